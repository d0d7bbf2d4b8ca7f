/* trunkline: one binary — the daemon and the command-line client. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"
#include "daemon/config.h"
#include "daemon/serve.h"

#define TL_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "trunkline %s — static SIP trunks to AI voice agents\n\n"
            "usage:\n"
            "  trunkline serve [--setting value]...   run the gateway (serve --help)\n"
            "  trunkline numbers|calls|agents|workspaces|tokens|endpoints ...\n"
            "                                         manage it over the REST API\n"
            "  trunkline token create --data-dir DIR  a token made on the host (recovery)\n"
            "  trunkline config                       the settings table\n"
            "  trunkline routes                       the REST routes served\n"
            "  trunkline version\n",
            TL_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve"))
        return tl_serve_main(argc - 2, argv + 2);
    int tl_probe_main(int argc, char **argv); /* cli/probe.c: SIP trunk test tool */
    if (!strcmp(cmd, "probe"))
        return tl_probe_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "token"))
        return tl_offline_token_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "routes")) {
        tl_api_routes_print(stdout);
        return 0;
    }
    if (!strcmp(cmd, "config")) {
        tl_config_print_table(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("trunkline %s\n", TL_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return 0;
    }
    static const char *resources[] = {"numbers",    "calls",  "agents",
                                      "workspaces", "tokens", "endpoints"};
    for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++)
        if (!strcmp(cmd, resources[i]))
            return tl_cli_main(argc - 1, argv + 1);
    fprintf(stderr, "trunkline: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
