/* db: choosing the backend a store target names (db.h) */
#include "store/db.h"

const struct tl_db_ops *tl_db_backend_for(const char *target)
{
    return &tl_db_sqlite;
}
