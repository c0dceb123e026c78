/* cmocka needs these system headers first, in this order. */
#ifndef TESTS_HARNESS_CMOCKA_H
#define TESTS_HARNESS_CMOCKA_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#endif
