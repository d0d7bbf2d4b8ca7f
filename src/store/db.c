/* db: choosing the backend a store target names (db.h) */
#include <string.h>

#include "store/db.h"

/* libpq's own forms (libpq "Connection Strings"): a URI, or key=value pairs; a file path
 * has no '=' before its first '/' in any sane layout, and SQLite's is what remains */
const struct tl_db_ops *tl_db_backend_for(const char *target)
{
    if (!strncmp(target, "postgresql://", 13) || !strncmp(target, "postgres://", 11))
        return &tl_db_pg;
    const char *eq = strchr(target, '='), *slash = strchr(target, '/');
    if (eq && (!slash || eq < slash))
        return &tl_db_pg;
    return &tl_db_sqlite;
}
