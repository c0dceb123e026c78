#include "config.h"
int filters_registry_placeholder;
