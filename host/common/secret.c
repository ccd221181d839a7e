/* secret.c - see secret.h. */
#include "common/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_FILE "core_secret"

static int
read_secret(const char *path, char **secret, struct berr *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return berr_set(err, "cannot stat %s: %s", path,
				strerror(errno));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return berr_set(err,
				"%s is readable by other users (mode %03o); "
				"fix with: chmod 600 %s",
				path, (unsigned)(st.st_mode & 0777), path);
	char *buf = NULL;
	if (util_read_file(path, 4096, &buf, NULL, err) < 0)
		return -1;
	char *s = util_trim(buf);
	if (!*s) {
		free(buf);
		return berr_set(err, "%s is empty; delete it to generate a "
				     "new secret",
				path);
	}
	*secret = xstrdup(s);
	free(buf);
	return 0;
}

int
secret_resolve(const char *data_dir, char **secret, char **path,
	       struct berr *err)
{
	*path = NULL;
	const char *env = getenv("CORE_SECRET");
	if (env && *env) {
		*secret = xstrdup(env);
		return 0;
	}
	char *p = xasprintf("%s/%s", data_dir, SECRET_FILE);
	if (access(p, F_OK) == 0) {
		if (read_secret(p, secret, err) < 0) {
			free(p);
			return -1;
		}
		*path = p;
		return 0;
	}
	unsigned char raw[32];
	util_random_bytes(raw, sizeof(raw));
	char hex[65];
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		berr_set(err, "cannot create %s: %s", p, strerror(errno));
		free(p);
		return -1;
	}
	bool ok = write(fd, hex, 64) == 64 && write(fd, "\n", 1) == 1 &&
		  fsync(fd) == 0;
	int werr = errno;
	close(fd);
	if (!ok) {
		unlink(p);
		berr_set(err, "cannot write %s: %s", p, strerror(werr));
		free(p);
		return -1;
	}
	*secret = xstrdup(hex);
	*path = p;
	return 0;
}
