/* Loads kmip_key_management.so the way mariadbd does (dlopen RTLD_NOW, the _maria_* symbols,
 * the descriptor, the variables), with the layouts of MariaDB's include/mysql/plugin.h and
 * plugin_encryption.h written out here independently of the Rust definitions, then drives the
 * key calls. Usage: mariadb_host LIB layout | mariadb_host LIB run CONF_DIR NAMESPACE [ROUNDS]
 * ROUNDS: after the first deinit, init + get_latest_key_version(1) + deinit that many more
 * times (UNINSTALL + INSTALL PLUGIN), counting the threads left after each deinit.
 *
 * mariadb_host LIB script CONF_DIR NAMESPACE [refresh_ms N] COMMAND...: init (with
 * kmip_key_management_cache_version_timeout N, as a startup option), the commands, deinit:
 *   fetch ID        (the latest version of key ID and its bytes, as a page write reads them:
 *                    "RESULT fetch ID VERSION HEX", or "RESULT fetch ID absent" / "error N")
 *   rotate ID       (SET GLOBAL kmip_key_management_rotate_key = ID: "RESULT rotate ID ok|error")
 *   waitfile PATH   ("RESULT waiting PATH", then waits for PATH to exist, at most 300 s)
 * Prints "RESULT <name> <value>" lines. */
#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct st_mysql_show_var {
  const char *name;
  void *value;
  int type;
};

struct st_maria_plugin {
  int type;
  void *info;
  const char *name;
  const char *author;
  const char *descr;
  int license;
  int (*init)(void *);
  int (*deinit)(void *);
  unsigned int version;
  struct st_mysql_show_var *status_vars;
  void **system_vars;
  const char *version_info;
  unsigned int maturity;
};

struct st_mariadb_encryption {
  int interface_version;
  unsigned int (*get_latest_key_version)(unsigned int key_id);
  unsigned int (*get_key)(unsigned int key_id, unsigned int version, unsigned char *key,
                          unsigned int *key_length);
  void *crypt_ctx_size, *crypt_ctx_init, *crypt_ctx_update, *crypt_ctx_finish,
      *encrypted_length;
};

#define MYSQL_PLUGIN_VAR_HEADER \
  int flags;                    \
  const char *name;             \
  const char *comment;          \
  void *check;                  \
  void *update

struct sysvar_header { MYSQL_PLUGIN_VAR_HEADER; };
struct sysvar_str { MYSQL_PLUGIN_VAR_HEADER; char **value; const char *def_val; };
struct sysvar_ulong {
  MYSQL_PLUGIN_VAR_HEADER;
  unsigned long *value;
  unsigned long def_val, min_val, max_val, blk_sz;
};
struct sysvar_bool { MYSQL_PLUGIN_VAR_HEADER; char *value; char def_val; };
struct sysvar_int { MYSQL_PLUGIN_VAR_HEADER; int *value; int def_val, min_val, max_val, blk_sz; };

typedef int (*show_func)(void *thd, struct st_mysql_show_var *var, void *buf, void *status,
                         int scope);

#define INVALID (~0u)

/* A SET GLOBAL value (MariaDB's st_mysql_value). */
struct st_mysql_value {
  int (*value_type)(struct st_mysql_value *);
  const char *(*val_str)(struct st_mysql_value *, char *, int *);
  int (*val_real)(struct st_mysql_value *, double *);
  int (*val_int)(struct st_mysql_value *, long long *);
  int (*is_unsigned)(struct st_mysql_value *);
};
struct int_value {
  struct st_mysql_value base;
  long long number;
};
static int iv_type(struct st_mysql_value *v) { (void)v; return 2; }
static const char *iv_str(struct st_mysql_value *v, char *b, int *l) {
  (void)v; (void)b; (void)l;
  return NULL;
}
static int iv_real(struct st_mysql_value *v, double *d) { (void)v; (void)d; return 1; }
static int iv_int(struct st_mysql_value *v, long long *i) {
  *i = ((struct int_value *)v)->number;
  return 0;
}
static int iv_unsigned(struct st_mysql_value *v) { (void)v; return 0; }
typedef int (*check_func)(void *thd, void *var, void *save, struct st_mysql_value *value);

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
  if (!p) {
    fprintf(stderr, "missing symbol %s\n", name);
    exit(2);
  }
  return p;
}

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

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  int version = *(int *)sym(lib, "_maria_plugin_interface_version_");
  int size = *(int *)sym(lib, "_maria_sizeof_struct_st_plugin_");
  struct st_maria_plugin *decl = sym(lib, "_maria_plugin_declarations_");
  struct st_mariadb_encryption *info = decl->info;
  printf("RESULT interface_version 0x%04x\n", version);
  printf("RESULT sizeof_st_plugin %d %zu\n", size, sizeof(struct st_maria_plugin));
  printf("RESULT type %d\n", decl->type);
  printf("RESULT name %s\n", decl->name);
  printf("RESULT license %d\n", decl->license);
  printf("RESULT maturity %u\n", decl->maturity);
  printf("RESULT version_info %s\n", decl->version_info);
  printf("RESULT terminator %s\n", decl[1].info == NULL && decl[1].name == NULL ? "yes" : "no");
  printf("RESULT encryption_interface 0x%04x\n", info->interface_version);
  printf("RESULT crypt_functions_null %s\n",
         !info->crypt_ctx_size && !info->crypt_ctx_init && !info->crypt_ctx_update &&
                 !info->crypt_ctx_finish && !info->encrypted_length
             ? "yes"
             : "no");
  struct sysvar_str *conf = NULL, *ns = NULL;
  struct sysvar_int *rotate = NULL;
  struct sysvar_ulong *version_timeout = NULL;
  for (void **v = decl->system_vars; *v; v++) {
    struct sysvar_header *h = *v;
    printf("RESULT sysvar %s 0x%x\n", h->name, h->flags);
    if (!strcmp(h->name, "conf_dir")) conf = *v;
    if (!strcmp(h->name, "key_namespace")) ns = *v;
    if (!strcmp(h->name, "cache_timeout") || !strcmp(h->name, "cache_version_timeout")) {
      struct sysvar_ulong *u = *v;
      *u->value = u->def_val; /* what the server does before init */
      if (!strcmp(h->name, "cache_version_timeout")) version_timeout = u;
    }
    if (!strcmp(h->name, "use_cache_on_error")) {
      struct sysvar_bool *b = *v;
      *b->value = b->def_val;
    }
    if (!strcmp(h->name, "rotate_key")) {
      struct sysvar_int *i = *v;
      rotate = i;
      printf("RESULT rotate_key_range %d %d\n", i->min_val, i->max_val);
    }
  }
  /* Before init, every key call says "no such key". */
  unsigned int len = 32;
  unsigned char key[64];
  printf("RESULT before_init_latest %u\n", info->get_latest_key_version(1));
  printf("RESULT before_init_get_key %u\n", info->get_key(1, 1, key, &len));
  if (strcmp(argv[2], "script") == 0 && argc >= 5) {
    *conf->value = argv[3];
    *ns->value = argv[4];
    int first = 5;
    if (argc > 6 && strcmp(argv[5], "refresh_ms") == 0) {
      *version_timeout->value = strtoul(argv[6], NULL, 10);
      first = 7;
    }
    int init = decl->init(NULL);
    printf("RESULT init %d\n", init);
    fflush(stdout);
    if (init) return 0;
    for (int i = first; i < argc; i += 2) {
      if (i + 1 >= argc) {
        printf("FATAL incomplete command %s\n", argv[i]);
        return 2;
      }
      const char *cmd = argv[i], *arg = argv[i + 1];
      if (strcmp(cmd, "fetch") == 0) {
        unsigned int id = (unsigned int)atoi(arg), v = info->get_latest_key_version(id);
        if (v == INVALID) {
          printf("RESULT fetch %u absent\n", id);
        } else {
          unsigned char bytes[64];
          unsigned int n = sizeof bytes;
          unsigned int rc = info->get_key(id, v, bytes, &n);
          if (rc) {
            printf("RESULT fetch %u error %u\n", id, rc);
          } else {
            printf("RESULT fetch %u %u ", id, v);
            for (unsigned int k = 0; k < n; k++) printf("%02x", bytes[k]);
            printf("\n");
          }
        }
      } else if (strcmp(cmd, "rotate") == 0) {
        struct int_value value = {{iv_type, iv_str, iv_real, iv_int, iv_unsigned}, atoll(arg)};
        int save = 0;
        int rc = ((check_func)rotate->check)(NULL, rotate, &save, &value.base);
        printf("RESULT rotate %s %s\n", arg, rc ? "error" : "ok");
      } else if (strcmp(cmd, "waitfile") == 0) {
        printf("RESULT waiting %s\n", arg);
        fflush(stdout);
        printf("RESULT waitfile %s\n", wait_for_file(arg) ? "resumed" : "timeout");
      } else {
        printf("FATAL bad command %s\n", cmd);
        return 2;
      }
      fflush(stdout);
    }
    printf("RESULT deinit %d\n", decl->deinit(NULL));
    printf("RESULT threads-after-deinit %d\n", thread_count());
    return 0;
  }
  if (strcmp(argv[2], "run") || argc < 5) return 0;

  *conf->value = argv[3];
  *ns->value = argv[4];
  int rc = decl->init(NULL);
  printf("RESULT init %d\n", rc);
  if (rc) return 0;
  unsigned int v1 = info->get_latest_key_version(1);
  printf("RESULT latest_1 %u\n", v1);
  printf("RESULT latest_7 %u\n", info->get_latest_key_version(7));
  /* Length query: key NULL, *key_length uninitialised (as encryption_key_version_exists). */
  unsigned int r;
  len = 0xdeadbeef;
  r = info->get_key(1, v1, NULL, &len);
  printf("RESULT length_query %u %u\n", r, len);
  len = 16;
  r = info->get_key(1, v1, key, &len);
  printf("RESULT small_buffer %u %u\n", r, len);
  memset(key, 0xAA, sizeof key);
  len = sizeof key;
  r = info->get_key(1, v1, key, &len);
  int untouched = 1;
  for (size_t i = len; i < sizeof key; i++) untouched &= key[i] == 0xAA;
  printf("RESULT full_buffer %u %u %s\n", r, len, untouched ? "rest-untouched" : "overwritten");
  len = sizeof key;
  printf("RESULT missing_version %u\n", info->get_key(1, v1 + 100, key, &len));
  len = sizeof key;
  printf("RESULT version_zero %u\n", info->get_key(1, 0, key, &len));
  printf("RESULT null_length %u\n", info->get_key(1, v1, key, NULL));

  /* Status variables through the SHOW_FUNC, with the server's buffer size. */
  struct st_mysql_show_var *top = decl->status_vars, out = *top;
  void *buf = calloc(1, 256 * sizeof(void *));
  int src = ((show_func)top->value)(NULL, &out, buf, NULL, 0);
  printf("RESULT status_rc %d type %d\n", src, out.type);
  for (struct st_mysql_show_var *s = out.value; s && s->name; s++) {
    if (s->type == 4)
      printf("RESULT status %s %llu\n", s->name, *(unsigned long long *)s->value);
    else if (s->type == 5)
      printf("RESULT status %s '%s'\n", s->name, (char *)s->value);
  }
  free(buf);
  printf("RESULT deinit %d\n", decl->deinit(NULL));
  printf("RESULT threads-after-deinit %d\n", thread_count());
  int rounds = argc > 5 ? atoi(argv[5]) : 0;
  for (int k = 0; k < rounds; k++) {
    int init = decl->init(NULL);
    unsigned int latest = info->get_latest_key_version(1);
    int deinit = decl->deinit(NULL);
    printf("RESULT reinit init %d latest_1 %u deinit %d threads-after-deinit %d\n", init, latest,
           deinit, thread_count());
    fflush(stdout);
  }
  return 0;
}
