/* Argument checks both addons share: a thrown error's code, and the arguments a call must have. */
#ifndef KUP_NAPI_ARGS_H
#define KUP_NAPI_ARGS_H

#include <stddef.h>
#include <node_api.h>

static inline void throw_code(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
}

/* The first `want` arguments into argv; 0 (an error thrown) when fewer were given. */
static inline int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < want) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "too few arguments");
    return 0;
  }
  return 1;
}

/* The data of a Float64Array of at least `length` elements; NULL (an error thrown) otherwise. */
static inline double *get_totals(napi_env env, napi_value v, size_t length, const char *message) {
  napi_typedarray_type array_type;
  size_t have = 0;
  void *data = NULL;
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  if (is_typed) napi_get_typedarray_info(env, v, &array_type, &have, &data, NULL, NULL);
  if (!is_typed || array_type != napi_float64_array || have < length) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", message);
    return NULL;
  }
  return data;
}

#endif
