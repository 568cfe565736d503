/*
 * main.c - the ingot program's entry point: hands argv to the CLI module.
 * All logic lives in cli.c and the cmd_*.c modules (Lua's main -> pmain).
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return ig_cli_main(argc, argv);
}
