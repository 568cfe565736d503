/*
 * ingot.h - libingot, the embedding API.
 *
 * This is the only header installed with libingot; every symbol it declares
 * is exported (INGOT_API) and everything else in the library is hidden.
 * Names use the public "ingot_" prefix, as Lua uses "lua_" publicly.
 *
 * The import API (open a runner with settings, run a pipeline on a path,
 * FILE * or buffer, read results and row errors) arrives with the import
 * engine; for now the library reports its version.
 */
#ifndef INGOT_H
#define INGOT_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define INGOT_API __attribute__((visibility("default")))
#else
#define INGOT_API
#endif

/* The library version, "MAJOR.MINOR.PATCH". Static string; cannot fail. */
INGOT_API const char *ingot_version(void);

#ifdef __cplusplus
}
#endif

#endif /* INGOT_H */
