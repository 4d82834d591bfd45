/*
 * component_keyring_okv.h: what libcomponent_keyring_okv.so (installed as
 * component_keyring_okv.so) exports, in C.
 *
 * The library is a MySQL 8.4/9.x keyring component. Its only symbol is list_components(), which
 * returns the one component: its name, the services it provides (each "<service>.
 * component_keyring_okv" with a table of function pointers), the one service it requires
 * ("registry", a placeholder the loader fills before init) and its metadata. The layouts are
 * those of MySQL's include/mysql/components/ (dynamic_loader.h, registry.h, the keyring_*.h
 * service headers, mysql_keyring_native_key_id.h, mysql_simple_error_log.h), unchanged since
 * 8.0.24; boundary/component/src/abi.rs checks the Rust side against the 9.7 headers, and
 * tests/c/component_host.c loads the library through this header.
 *
 * Return convention: 0 = success, non-zero = failure, except is_valid()/is_initialized(), where
 * non-zero means true. Reader init: success with *reader == NULL means the key is absent.
 * Buffer rules: reader fetch accepts a type buffer of exactly the type's length (a NUL is only
 * written when there is room); the keys iterator's lengths exclude the NUL and get() needs room
 * for it; the metadata query's lengths include the NUL. A NULL owner is the empty owner.
 */
#ifndef COMPONENT_KEYRING_OKV_H
#define COMPONENT_KEYRING_OKV_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* MySQL name -> here: mysql_service_status_t -> okvc_status_t, my_h_service and the handles ->
 * okvc_handle_t, mysql_component_t -> struct okvc_component, the service tables:
 * registry, mysql_simple_error_log -> okvc_simple_log, keyring_reader_with_status ->
 * okvc_reader, keyring_writer, keyring_generator, keyring_keys_metadata_iterator and
 * keyring_component_metadata_query -> okvc_iterator (same shape), keyring_component_status,
 * keyring_load, keyring_aes, mysql_keyring_native_key_id. */
typedef int okvc_status_t;
typedef void *okvc_handle_t;

struct okvc_service_ref { const char *name; void *implementation; };
struct okvc_placeholder_ref { const char *name; void **implementation; };
struct okvc_metadata_ref { const char *key; const char *value; };
struct okvc_component {
  const char *name;
  struct okvc_service_ref *provides;
  struct okvc_placeholder_ref *requires_service;
  struct okvc_metadata_ref *metadata;
  okvc_status_t (*init)(void);
  okvc_status_t (*deinit)(void);
};

struct okvc_registry {
  okvc_status_t (*acquire)(const char *, okvc_handle_t *);
  okvc_status_t (*acquire_related)(const char *, okvc_handle_t, okvc_handle_t *);
  okvc_status_t (*release)(okvc_handle_t);
};
struct okvc_simple_log {
  okvc_status_t (*emit)(const char *, const char *, unsigned long, int, int, ...);
};
struct okvc_reader {
  okvc_status_t (*init)(const char *, const char *, okvc_handle_t *);
  okvc_status_t (*deinit)(okvc_handle_t);
  okvc_status_t (*fetch_length)(okvc_handle_t, size_t *, size_t *);
  okvc_status_t (*fetch)(okvc_handle_t, unsigned char *, size_t, size_t *, char *, size_t, size_t *);
};
struct okvc_writer {
  okvc_status_t (*store)(const char *, const char *, const unsigned char *, size_t, const char *);
  okvc_status_t (*remove)(const char *, const char *);
};
struct okvc_generator {
  okvc_status_t (*generate)(const char *, const char *, const char *, size_t);
};
struct okvc_iterator {
  okvc_status_t (*init)(okvc_handle_t *);
  okvc_status_t (*deinit)(okvc_handle_t);
  okvc_status_t (*is_valid)(okvc_handle_t);
  okvc_status_t (*next)(okvc_handle_t);
  okvc_status_t (*get_length)(okvc_handle_t, size_t *, size_t *);
  okvc_status_t (*get)(okvc_handle_t, char *, size_t, char *, size_t);
};
struct okvc_component_status { okvc_status_t (*is_initialized)(void); };
struct okvc_keyring_load { okvc_status_t (*load)(const char *, const char *); };
typedef okvc_status_t (*okvc_aes_op)(const char *, const char *, const char *, size_t,
                           const unsigned char *, int, const unsigned char *, size_t,
                           unsigned char *, size_t, size_t *);
struct okvc_keyring_aes {
  okvc_status_t (*get_size)(size_t, const char *, size_t, size_t *);
  okvc_aes_op encrypt;
  okvc_aes_op decrypt;
};
struct okvc_native_key_id {
  okvc_status_t (*get_backend_key_id)(const char *, const char *, char *, size_t);
};

/* The loader's entry point. */
struct okvc_component *list_components(void);

#ifdef __cplusplus
}
#endif

#endif /* COMPONENT_KEYRING_OKV_H */
