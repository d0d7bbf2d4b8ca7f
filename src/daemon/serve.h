#ifndef TL_SERVE_H
#define TL_SERVE_H
/* `trunkline serve`: the daemon. argv holds the flags after "serve". Returns the exit
 * code: 0 after a clean shutdown (SIGTERM/SIGINT), 1 when start-up failed (the reason is
 * printed), 2 for bad settings. */
int tl_serve_main(int argc, char **argv);
/* `trunkline token create --data-dir DIR …` (offline.c): a token made in the store on the
 * host, for recovery when no operator token is left. argv holds what follows "token". */
int tl_offline_token_main(int argc, char **argv);
#endif
