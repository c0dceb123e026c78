#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpget.h"

int
httpget(int port, const char *path, char **body)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct timeval tv = { 5, 0 };
	size_t len = 0, cap = 65536;
	char req[512], *buf, *sep;
	int fd, status = -1;
	ssize_t n;

	*body = NULL;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	n = snprintf(req, sizeof req,
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    write(fd, req, (size_t)n) != n || (buf = malloc(cap)) == NULL) {
		close(fd);
		return -1;
	}
	/* The server closes the connection after its response. */
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *more = realloc(buf, cap *= 2);

			if (more == NULL)
				break;
			buf = more;
		}
	}
	close(fd);
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &status) == 1 &&
	    (sep = strstr(buf, "\r\n\r\n")) != NULL)
		*body = strdup(sep + 4);
	else
		status = -1;
	free(buf);
	return status;
}
