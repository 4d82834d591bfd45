/*
 * plugin_host: loads libkeyring_okv.so the way mysqld does and drives it from the command line.
 *
 *   plugin_host LIB layout
 *       checks the exported symbols against include/keyring_okv.h and prints "name value" lines
 *   plugin_host LIB run CONF_DIR COMMAND...
 *       links fake server services, sets keyring_okv_conf_dir (empty string: unset), calls init,
 *       runs the commands, calls deinit. Commands (OWNER "-" means NULL):
 *         generate ID OWNER TYPE LEN | store ID OWNER TYPE HEX | fetch ID OWNER | remove ID OWNER
 *         list | probe | setdir DIR | nullargs | threads
 *         reinit   (deinit, count the threads left, init again: UNINSTALL + INSTALL PLUGIN)
 *         waitfile PATH  (prints "RESULT waiting PATH", then waits for PATH to exist, at most
 *                         300 s: the test changes the KMIP server while the plugin is loaded)
 *       Each prints one "RESULT ..." line; server log lines print as "LOG level message".
 *
 * The fake allocator tags its blocks, so a buffer handed back by the plugin that did not come
 * from mysql_malloc_service aborts the run, as it would corrupt mysqld's heap.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../include/keyring_okv.h"

#define MAGIC 0x6b72696e676f6b76ULL

static int log_message(MYSQL_PLUGIN *plugin, int level, const char *format, ...) {
  (void)plugin;
  va_list ap;
  va_start(ap, format);
  printf("LOG %d ", level);
  vprintf(format, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  return 0;
}

static void *fake_malloc(unsigned int key, size_t size, int flags) {
  (void)key;
  (void)flags;
  uint64_t *p = malloc(size + 16);
  if (!p) return NULL;
  p[0] = MAGIC;
  p[1] = size;
  return p + 2;
}
static void fake_free(void *ptr) {
  if (!ptr) return;
  uint64_t *p = (uint64_t *)ptr - 2;
  if (p[0] != MAGIC) {
    printf("FATAL buffer not from mysql_malloc_service\n");
    fflush(stdout);
    abort();
  }
  p[0] = 0;
  free(p);
}
static void *fake_realloc(unsigned int k, void *p, size_t s, int f) {
  (void)k; (void)p; (void)s; (void)f;
  return NULL;
}
static void fake_claim(const void *p) { (void)p; }
static void *fake_memdup(unsigned int k, const void *from, size_t len, int f) {
  void *p = fake_malloc(k, len, f);
  if (p) memcpy(p, from, len);
  return p;
}
static char *fake_strdup(unsigned int k, const char *from, int f) {
  return fake_memdup(k, from, strlen(from) + 1, f);
}
static char *fake_strndup(unsigned int k, const char *from, size_t len, int f) {
  char *p = fake_malloc(k, len + 1, f);
  if (p) { memcpy(p, from, len); p[len] = 0; }
  return p;
}

static struct my_plugin_log_service log_service = {log_message};
static struct mysql_malloc_service_st malloc_service = {
    fake_malloc, fake_realloc, fake_claim, fake_free, fake_memdup, fake_strdup, fake_strndup};

/* A SET GLOBAL value. */
struct str_value {
  struct st_mysql_value base;
  const char *text;
};
static int v_type(struct st_mysql_value *v) { (void)v; return 0; }
static const char *v_str(struct st_mysql_value *v, char *buf, int *len) {
  const char *t = ((struct str_value *)v)->text;
  int n = (int)strlen(t);
  if (n < *len) { memcpy(buf, t, n + 1); *len = n; return buf; }
  *len = n;
  return t;
}
static int v_real(struct st_mysql_value *v, double *d) { (void)v; (void)d; return 1; }
static int v_int(struct st_mysql_value *v, long long *i) { (void)v; (void)i; return 1; }
static int v_unsigned(struct st_mysql_value *v) { (void)v; return 0; }

/* Threads of this process: the host's own plus whatever the plugin started. */
static int thread_count(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static const char *owner_arg(const char *s) { return strcmp(s, "-") == 0 ? NULL : s; }

static size_t unhex(const char *hex, unsigned char *out) {
  size_t n = strlen(hex) / 2;
  for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &out[i]);
  return n;
}

static int wait_for_file(const char *path) {
  struct timespec step = {0, 10 * 1000 * 1000};
  for (int k = 0; k < 30000; k++) {
    if (access(path, F_OK) == 0) return 1;
    nanosleep(&step, NULL);
  }
  return 0;
}

static void *sym(void *lib, const char *name) {
  void *p = dlsym(lib, name);
  if (!p) { printf("FATAL missing symbol %s\n", name); exit(2); }
  return p;
}

#define OFF(T, f) printf("offsetof %s.%s %zu\n", #T, #f, offsetof(struct T, f))

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: see the comment at the top\n"); return 2; }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) { printf("FATAL dlopen: %s\n", dlerror()); return 2; }
  int *iface = sym(lib, "_mysql_plugin_interface_version_");
  int *sizeof_plugin = sym(lib, "_mysql_sizeof_struct_st_plugin_");
  struct st_mysql_plugin *decls = sym(lib, "_mysql_plugin_declarations_");
  struct my_plugin_log_service **log_ptr = sym(lib, "my_plugin_log_service");
  struct mysql_malloc_service_st **malloc_ptr = sym(lib, "mysql_malloc_service");
  struct st_mysql_keyring *kr = decls[0].info;
  struct keyring_okv_sysvar_str *var = (struct keyring_okv_sysvar_str *)decls[0].system_vars[0];

  if (strcmp(argv[2], "layout") == 0) {
    printf("interface_version %d\n", *iface);
    printf("exported_sizeof_st_plugin %d\n", *sizeof_plugin);
    printf("sizeof st_mysql_plugin %zu\n", sizeof(struct st_mysql_plugin));
    printf("sizeof st_mysql_keyring %zu\n", sizeof(struct st_mysql_keyring));
    printf("sizeof sysvar_str %zu\n", sizeof(struct keyring_okv_sysvar_str));
    OFF(st_mysql_plugin, info); OFF(st_mysql_plugin, name); OFF(st_mysql_plugin, license);
    OFF(st_mysql_plugin, init); OFF(st_mysql_plugin, deinit); OFF(st_mysql_plugin, version);
    OFF(st_mysql_plugin, system_vars); OFF(st_mysql_plugin, flags);
    OFF(st_mysql_keyring, mysql_key_iterator_get_key);
    OFF(keyring_okv_sysvar_str, value); OFF(keyring_okv_sysvar_str, def_val);
    printf("plugin_type %d\n", decls[0].type);
    printf("plugin_name %s\n", decls[0].name);
    printf("plugin_license %d\n", decls[0].license);
    printf("plugin_flags %lu\n", decls[0].flags);
    printf("plugin_version %u\n", decls[0].version);
    printf("keyring_interface %d\n", kr->interface_version);
    printf("terminator_info_null %d\n", decls[1].info == NULL);
    printf("sysvar_name %s\n", var->name);
    printf("sysvar_flags %d\n", var->flags);
    printf("sysvar_default '%s'\n", var->def_val);
    struct keyring_okv_sysvar_bool *cache = (struct keyring_okv_sysvar_bool *)decls[0].system_vars[1];
    struct keyring_okv_sysvar_ulong *ttl = (struct keyring_okv_sysvar_ulong *)decls[0].system_vars[2];
    printf("sysvar_cache_name %s\n", cache->name);
    printf("sysvar_cache_flags %d\n", cache->flags);
    printf("sysvar_cache_default %d\n", (int)cache->def_val);
    printf("sysvar_cache_value %d\n", (int)*cache->value);
    printf("sysvar_ttl_name %s\n", ttl->name);
    printf("sysvar_ttl_flags %d\n", ttl->flags);
    printf("sysvar_ttl_default %lu\n", ttl->def_val);
    printf("sysvar_ttl_range %lu-%lu\n", ttl->min_val, ttl->max_val);
    printf("sysvar_ttl_value %lu\n", *ttl->value);
    struct keyring_okv_sysvar_ulong *sealed_hours = (struct keyring_okv_sysvar_ulong *)decls[0].system_vars[3];
    struct keyring_okv_sysvar_bool *sealed_user = (struct keyring_okv_sysvar_bool *)decls[0].system_vars[4];
    printf("sysvar_sealed_hours_name %s\n", sealed_hours->name);
    printf("sysvar_sealed_hours_flags %d\n", sealed_hours->flags);
    printf("sysvar_sealed_hours_default %lu\n", sealed_hours->def_val);
    printf("sysvar_sealed_hours_range %lu-%lu\n", sealed_hours->min_val, sealed_hours->max_val);
    printf("sysvar_sealed_user_name %s\n", sealed_user->name);
    printf("sysvar_sealed_user_flags %d\n", sealed_user->flags);
    printf("sysvar_sealed_user_default %d\n", (int)sealed_user->def_val);
    struct keyring_okv_sysvar_str *sealed_dir = (struct keyring_okv_sysvar_str *)decls[0].system_vars[5];
    printf("sysvar_sealed_dir_name %s\n", sealed_dir->name);
    printf("sysvar_sealed_dir_flags %d\n", sealed_dir->flags);
    printf("sysvar_sealed_dir_default '%s'\n", sealed_dir->def_val);
    struct keyring_okv_sysvar_ulong *key_state_poll = (struct keyring_okv_sysvar_ulong *)decls[0].system_vars[6];
    printf("sysvar_key_state_poll_name %s\n", key_state_poll->name);
    printf("sysvar_key_state_poll_flags %d\n", key_state_poll->flags);
    printf("sysvar_key_state_poll_default %lu\n", key_state_poll->def_val);
    printf("sysvar_key_state_poll_range %lu-%lu\n", key_state_poll->min_val, key_state_poll->max_val);
    struct keyring_okv_sysvar_str *key_state_action = (struct keyring_okv_sysvar_str *)decls[0].system_vars[7];
    printf("sysvar_key_state_action_name %s\n", key_state_action->name);
    printf("sysvar_key_state_action_flags %d\n", key_state_action->flags);
    printf("sysvar_key_state_action_default '%s'\n", key_state_action->def_val);
    printf("sysvar_terminated %d\n", decls[0].system_vars[8] == NULL);
    printf("log_service_before_link %lu\n", (unsigned long)(uintptr_t)*log_ptr);
    printf("malloc_service_before_link %lu\n", (unsigned long)(uintptr_t)*malloc_ptr);
    /* Every function must tolerate NULL where mysqld may pass it. */
    kr->mysql_key_iterator_deinit(NULL);
    printf("null_get_key %d\n", kr->mysql_key_iterator_get_key(NULL, NULL, NULL));
    kr->mysql_key_iterator_init(NULL);
    return 0;
  }

  if (strcmp(argv[2], "run") != 0 || argc < 4) return 2;
  *log_ptr = &log_service;
  *malloc_ptr = &malloc_service;
  char *dir_value = argv[3];
  *var->value = dir_value;
  printf("RESULT init %d\n", decls[0].init(decls));
  fflush(stdout);
  for (int i = 4; i < argc;) {
    const char *cmd = argv[i];
    if (strcmp(cmd, "generate") == 0 && i + 4 < argc) {
      bool err = kr->mysql_key_generate(argv[i + 1], argv[i + 3], owner_arg(argv[i + 2]),
                                        (size_t)atoi(argv[i + 4]));
      printf("RESULT generate %s %s\n", argv[i + 1], err ? "error" : "ok");
      i += 5;
    } else if (strcmp(cmd, "store") == 0 && i + 4 < argc) {
      unsigned char buf[20000];
      size_t n = unhex(argv[i + 4], buf);
      bool err = kr->mysql_key_store(argv[i + 1], argv[i + 3], owner_arg(argv[i + 2]), buf, n);
      printf("RESULT store %s %s\n", argv[i + 1], err ? "error" : "ok");
      i += 5;
    } else if (strcmp(cmd, "fetch") == 0 && i + 2 < argc) {
      char *type = NULL;
      void *key = NULL;
      size_t len = 0;
      bool err = kr->mysql_key_fetch(argv[i + 1], &type, owner_arg(argv[i + 2]), &key, &len);
      if (err) {
        printf("RESULT fetch %s error\n", argv[i + 1]);
      } else if (key == NULL) {
        printf("RESULT fetch %s absent\n", argv[i + 1]);
      } else {
        printf("RESULT fetch %s %s %zu ", argv[i + 1], type, len);
        for (size_t k = 0; k < len; k++) printf("%02x", ((unsigned char *)key)[k]);
        printf("\n");
        fake_free(key);
        fake_free(type);
      }
      i += 3;
    } else if (strcmp(cmd, "remove") == 0 && i + 2 < argc) {
      bool err = kr->mysql_key_remove(argv[i + 1], owner_arg(argv[i + 2]));
      printf("RESULT remove %s %s\n", argv[i + 1], err ? "error" : "ok");
      i += 3;
    } else if (strcmp(cmd, "probe") == 0) {
      char *type = NULL;
      void *key = NULL;
      size_t len = 0;
      bool err = kr->mysql_key_fetch("dummy_daemon_proxy_keyring_id", &type, NULL, &key, &len);
      printf("RESULT probe %s\n", err ? "not-functional" : "active");
      if (key) fake_free(key);
      if (type) fake_free(type);
      i += 1;
    } else if (strcmp(cmd, "list") == 0) {
      void *it = NULL;
      kr->mysql_key_iterator_init(&it);
      if (!it) {
        printf("RESULT list error\n");
      } else {
        char id[KEYRING_OKV_MAX_ID_LENGTH + 1], owner[KEYRING_OKV_MAX_ID_LENGTH + 1];
        int n = 0;
        while (!kr->mysql_key_iterator_get_key(it, id, owner)) {
          printf("KEY %s\t%s\n", id, owner);
          n++;
        }
        kr->mysql_key_iterator_deinit(it);
        printf("RESULT list %d\n", n);
      }
      i += 1;
    } else if (strcmp(cmd, "guardlist") == 0) {
      /* The buffer sizes mysqld's callers pass to get_key, each followed by guard bytes:
       * keyring migration (id MAX_KEY_LEN 16384, owner USERNAME_LENGTH 96),
       * performance_schema.keyring_keys (256, 256), the keyring proxy (1025, 1025). */
      static const size_t sizes[3][2] = {{16384, 96}, {256, 256}, {1025, 1025}};
      enum { GUARD = 64 };
      int broken = 0, counts[3], full[3];
      for (int c = 0; c < 3; c++) {
        unsigned char *id = malloc(sizes[c][0] + GUARD), *owner = malloc(sizes[c][1] + GUARD);
        memset(id, 0xA5, sizes[c][0] + GUARD);
        memset(owner, 0xA5, sizes[c][1] + GUARD);
        void *it = NULL;
        kr->mysql_key_iterator_init(&it);
        int n = 0;
        full[c] = 0;
        while (it && !kr->mysql_key_iterator_get_key(it, (char *)id, (char *)owner)) {
          if (memchr(id, 0, sizes[c][0]) == NULL || memchr(owner, 0, sizes[c][1]) == NULL) broken++;
          else if (strlen((char *)id) == 255 && strlen((char *)owner) == 95) full[c]++;
          n++;
        }
        if (it) kr->mysql_key_iterator_deinit(it);
        for (size_t k = 0; k < GUARD; k++) {
          if (id[sizes[c][0] + k] != 0xA5 || owner[sizes[c][1] + k] != 0xA5) broken++;
        }
        free(id);
        free(owner);
        counts[c] = it ? n : -1;
      }
      printf("RESULT guardlist %d %d %d %d %d %d %s\n", counts[0], counts[1], counts[2], full[0],
             full[1], full[2], broken ? "guards-broken" : "guards-ok");
      i += 1;
    } else if (strcmp(cmd, "setdir") == 0 && i + 1 < argc) {
      struct str_value v = {{v_type, v_str, v_real, v_int, v_unsigned}, argv[i + 1]};
      void *save[2] = {NULL, NULL};
      int rc = var->check(NULL, var, save, &v.base);
      if (rc == 0) var->update(NULL, var, var->value, save);
      printf("RESULT setdir %s value=%s\n", rc == 0 ? "ok" : "refused", *var->value);
      i += 2;
    } else if (strcmp(cmd, "reinit") == 0) {
      int rc = decls[0].deinit(decls);
      int left = thread_count();
      *var->value = dir_value;
      printf("RESULT reinit deinit %d threads-after-deinit %d init %d\n", rc, left,
             decls[0].init(decls));
      i += 1;
    } else if (strcmp(cmd, "waitfile") == 0 && i + 1 < argc) {
      printf("RESULT waiting %s\n", argv[i + 1]);
      fflush(stdout);
      printf("RESULT waitfile %s\n", wait_for_file(argv[i + 1]) ? "resumed" : "timeout");
      i += 2;
    } else if (strcmp(cmd, "threads") == 0) {
      printf("RESULT threads %d\n", thread_count());
      i += 1;
    } else if (strcmp(cmd, "nullargs") == 0) {
      char *type = NULL;
      void *key = NULL;
      size_t len = 0;
      int errors = kr->mysql_key_fetch(NULL, &type, NULL, &key, &len) +
                   kr->mysql_key_fetch("x", NULL, NULL, NULL, NULL) +
                   kr->mysql_key_store(NULL, NULL, NULL, NULL, 0) +
                   kr->mysql_key_generate(NULL, NULL, NULL, 0) + kr->mysql_key_remove(NULL, NULL);
      printf("RESULT nullargs %d\n", errors);
      i += 1;
    } else {
      printf("FATAL bad command %s\n", cmd);
      return 2;
    }
    fflush(stdout);
  }
  printf("RESULT deinit %d\n", decls[0].deinit(decls));
  printf("RESULT threads-after-deinit %d\n", thread_count());
  dlclose(lib);
  return 0;
}
