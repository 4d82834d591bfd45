/*
 * keyring_okv.h: what libkeyring_okv.so (installed as keyring_okv.so) exports.
 *
 * The library is a MySQL keyring plugin. mysqld finds it through the three _mysql_* symbols,
 * links the two service pointers to its own service tables at load time, and reaches every
 * other function through the descriptor. The layouts below are those of MySQL's
 * include/mysql/plugin.h and plugin_keyring.h (identical for 8.0, 8.4 and 9.x on LP64);
 * tests/plugin/abi.rs compiles a program against this header and checks the library against it.
 *
 * Ownership: buffers returned by mysql_key_fetch (key and key type) come from the server's
 * mysql_malloc_service; the caller wipes and frees them with my_free. Return convention of the
 * keyring functions: false = success, true = error; an absent key is success with *key == NULL.
 */
#ifndef KEYRING_OKV_H
#define KEYRING_OKV_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KEYRING_OKV_PLUGIN_INTERFACE_VERSION 0x010B
#define KEYRING_OKV_KEYRING_PLUGIN_TYPE 10
#define KEYRING_OKV_KEYRING_INTERFACE_VERSION 0x0101
#define KEYRING_OKV_PLUGIN_OPT_ALLOW_EARLY 4UL
#define KEYRING_OKV_PLUGIN_VAR_STR 0x0005
#define KEYRING_OKV_PLUGIN_VAR_NODEFAULT 0x4000
/* Longest key id and owner written by mysql_key_iterator_get_key, without the NUL: what fits
 * the smallest buffers mysqld passes (performance_schema 256 bytes, migration's owner 96). */
#define KEYRING_OKV_MAX_ID_LENGTH 255
#define KEYRING_OKV_MAX_OWNER_LENGTH 95

typedef void *MYSQL_PLUGIN;

struct st_mysql_plugin {
  int type;
  void *info;
  const char *name;
  const char *author;
  const char *descr;
  int license;
  int (*init)(MYSQL_PLUGIN);
  int (*check_uninstall)(MYSQL_PLUGIN);
  int (*deinit)(MYSQL_PLUGIN);
  unsigned int version;
  void *status_vars;
  void **system_vars;
  void *__reserved1;
  unsigned long flags;
};

struct st_mysql_keyring {
  int interface_version;
  bool (*mysql_key_store)(const char *key_id, const char *key_type, const char *user_id,
                          const void *key, size_t key_len);
  bool (*mysql_key_fetch)(const char *key_id, char **key_type, const char *user_id, void **key,
                          size_t *key_len);
  bool (*mysql_key_remove)(const char *key_id, const char *user_id);
  bool (*mysql_key_generate)(const char *key_id, const char *key_type, const char *user_id,
                             size_t key_len);
  void (*mysql_key_iterator_init)(void **key_iterator);
  void (*mysql_key_iterator_deinit)(void *key_iterator);
  bool (*mysql_key_iterator_get_key)(void *key_iterator, char *key_id, char *user_id);
};

struct st_mysql_value {
  int (*value_type)(struct st_mysql_value *);
  const char *(*val_str)(struct st_mysql_value *, char *buffer, int *length);
  int (*val_real)(struct st_mysql_value *, double *realbuf);
  int (*val_int)(struct st_mysql_value *, long long *intbuf);
  int (*is_unsigned)(struct st_mysql_value *);
};

/* MYSQL_SYSVAR_STR(conf_dir, ...): the system variable keyring_okv_conf_dir. */
struct keyring_okv_sysvar_str {
  int flags;
  const char *name;
  const char *comment;
  int (*check)(void *thd, void *var, void *save, struct st_mysql_value *value);
  void (*update)(void *thd, void *var, void *var_ptr, const void *save);
  char **value;
  const char *def_val;
};

/* MYSQL_SYSVAR_BOOL(cache_keys, ...): keyring_okv_cache_keys. */
struct keyring_okv_sysvar_bool {
  int flags;
  const char *name;
  const char *comment;
  int (*check)(void *thd, void *var, void *save, struct st_mysql_value *value);
  void (*update)(void *thd, void *var, void *var_ptr, const void *save);
  bool *value;
  bool def_val;
};

/* MYSQL_SYSVAR_ULONG(cache_ttl_seconds, ...): keyring_okv_cache_ttl_seconds. */
struct keyring_okv_sysvar_ulong {
  int flags;
  const char *name;
  const char *comment;
  int (*check)(void *thd, void *var, void *save, struct st_mysql_value *value);
  void (*update)(void *thd, void *var, void *var_ptr, const void *save);
  unsigned long *value;
  unsigned long def_val;
  unsigned long min_val;
  unsigned long max_val;
  unsigned long blk_sz;
};

struct my_plugin_log_service {
  int (*my_plugin_log_message)(MYSQL_PLUGIN *plugin, int level, const char *format, ...);
};

struct mysql_malloc_service_st {
  void *(*mysql_malloc)(unsigned int key, size_t size, int flags);
  void *(*mysql_realloc)(unsigned int key, void *ptr, size_t size, int flags);
  void (*mysql_claim)(const void *ptr);
  void (*mysql_free)(void *ptr);
  void *(*my_memdup)(unsigned int key, const void *from, size_t length, int flags);
  char *(*my_strdup)(unsigned int key, const char *from, int flags);
  char *(*my_strndup)(unsigned int key, const char *from, size_t length, int flags);
};

/* Exported symbols. */
extern int _mysql_plugin_interface_version_;
extern int _mysql_sizeof_struct_st_plugin_;
extern struct st_mysql_plugin _mysql_plugin_declarations_[];
/* Service pointers: hold the service version (0x0100) until mysqld links them. */
extern struct my_plugin_log_service *my_plugin_log_service;
extern struct mysql_malloc_service_st *mysql_malloc_service;

#ifdef __cplusplus
}
#endif

#endif /* KEYRING_OKV_H */
