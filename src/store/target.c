/* The store a daemon opens (setting `store`, issue 13): SQLite by default, or a PostgreSQL
 * conninfo whose password comes from a file or the environment, never from the setting,
 * because settings are printed, logged and kept in config files and shell histories. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "store/db.h"
#include "store/store.h"

#define PASSWORD_FILE_MAX 1024

/* "postgresql://user:secret@host/db": a ':' in the userinfo, before the '@' of the
 * authority; or a password (or sslpassword) keyword or URI parameter anywhere */
static bool has_password(const char *t)
{
    for (const char *p = t; (p = strcasestr(p, "password")); p += 8) {
        const char *q = p + 8;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '=')
            return true;
    }
    const char *a = strstr(t, "://");
    if (!a)
        return false;
    a += 3;
    size_t auth = strcspn(a, "/?#");
    const char *at = memchr(a, '@', auth);
    return at && memchr(a, ':', (size_t)(at - a)) != NULL;
}

static int read_password_file(const char *path, char *out, size_t cap, struct tl_err *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return tl_err_set(err, errno, 500, "store_password", "store_password_file",
                          "cannot open store_password_file %s: %s", path, strerror(errno));
    int ret = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ret = tl_err_set(err, EINVAL, 500, "store_password", "store_password_file",
                         "store_password_file %s is not a regular file", path);
        goto out;
    }
    /* as with master.key: a database password others can read is no secret */
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        ret = tl_err_set(err, EPERM, 500, "store_password", "store_password_file",
                         "store_password_file %s has mode %03o, readable by group or others: "
                         "run chmod 600 on it",
                         path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    if (st.st_size <= 0 || (size_t)st.st_size >= cap || st.st_size > PASSWORD_FILE_MAX) {
        ret = tl_err_set(err, EINVAL, 500, "store_password", "store_password_file",
                         "store_password_file %s must hold a password of 1 to %d bytes", path,
                         (int)(cap < PASSWORD_FILE_MAX ? cap - 1 : PASSWORD_FILE_MAX));
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, out + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    out[got] = '\0';
    while (got && (out[got - 1] == '\n' || out[got - 1] == '\r'))
        out[--got] = '\0'; /* the newline an editor adds is not part of it */
    if (!got)
        ret = tl_err_set(err, EINVAL, 500, "store_password", "store_password_file",
                         "store_password_file %s is empty", path);
out:
    close(fd);
    if (ret)
        sodium_memzero(out, cap);
    return ret;
}

int tl_store_target(const char *setting, const char *data_dir, const char *password_file,
                    char *target, size_t tcap, char *password, size_t pcap, struct tl_err *err)
{
    password[0] = '\0';
    if (!setting || !*setting) {
        if ((size_t)snprintf(target, tcap, "%s/trunkline.db", data_dir) >= tcap)
            return tl_err_set(err, ENAMETOOLONG, 500, "invalid_setting", "data_dir",
                              "data_dir is too long");
        return 0;
    }
    if (strlen(setting) >= tcap)
        return tl_err_set(err, ENAMETOOLONG, 500, "invalid_setting", "store",
                          "the store setting is too long");
    tl_strlcpy(target, setting, tcap);
    if (tl_db_backend_for(setting) != &tl_db_pg)
        return 0; /* a SQLite file of the operator's choosing */
    if (has_password(setting))
        return tl_err_set(err, EINVAL, 500, "invalid_setting", "store",
                          "the store setting must not contain the database password (settings "
                          "are logged and printed): remove it, and put it in a file named by "
                          "store_password_file (mode 0600) or in the environment variable "
                          "TRUNKLINE_STORE_PASSWORD");
    if (password_file && *password_file)
        return read_password_file(password_file, password, pcap, err);
    const char *env = getenv("TRUNKLINE_STORE_PASSWORD");
    if (env && *env) {
        if (strlen(env) >= pcap)
            return tl_err_set(err, EINVAL, 500, "store_password", "TRUNKLINE_STORE_PASSWORD",
                              "TRUNKLINE_STORE_PASSWORD is longer than %d bytes", (int)pcap - 1);
        tl_strlcpy(password, env, pcap);
    }
    return 0; /* none: trust or peer authentication, or libpq's ~/.pgpass */
}
