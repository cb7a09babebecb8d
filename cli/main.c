/* SPDX-License-Identifier: MIT */
/* nvx: the command-line front end. Everything but main() lives in cli_lib so
 * that tests and the fuzz target reach it. */
#include "cli/cli.h"

int
main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
