/* cli: `trunkline <resource> <verb>`, the command-line client of the REST API (libcurl,
 * jansson). It shares no state with the daemon: everything goes through /v1/ so that the
 * CLI sees exactly what any other API client sees (tenancy, validation, warnings).
 *
 * Exit codes (scripts rely on them; docs/cli.md lists them too):
 *   0  success
 *   1  the API answered with an error (4xx/5xx), or another runtime failure
 *   2  usage error (unknown flag, missing argument); nothing was sent
 *   3  the API could not be reached (connection refused, DNS, TLS, timeout) */
#ifndef TL_CLI_H
#define TL_CLI_H

enum {
    TL_CLI_OK = 0,
    TL_CLI_API = 1,
    TL_CLI_USAGE = 2,
    TL_CLI_UNREACHABLE = 3,
};

/* argv[0] is the resource name ("numbers", "agents", "workspaces", "tokens",
 * "endpoints"); the rest are its verb and flags. Returns the process exit code.
 * Values of --password, --inbound-password and --token are overwritten in argv once read,
 * which shortens (but cannot close) the window in which `ps` shows them. */
int tl_cli_main(int argc, char **argv);

#endif
