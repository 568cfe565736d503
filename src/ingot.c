/*
 * ingot.c - the exported embedding API (src/ingot.h), a thin layer over the
 * internal modules.
 */
#include "ingot.h"

const char *ingot_version(void)
{
    return INGOT_VERSION;
}
