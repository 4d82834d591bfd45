/* A minimal component host: loads component_keyring_okv.so the way MySQL's dynamic loader
 * does (dlopen RTLD_NOW, list_components, fill the "registry" placeholder, init), looks its
 * services up by name in the provides list and calls them as the server does. The registry
 * hands out a mysql_simple_error_log whose emit prints "LOG <severity> <message>".
 *
 * usage: component_host LIB COMPONENT_DIR INSTANCE_DIR|- COMMAND...
 * commands (owners: "-" is NULL):
 *   load | status | initialized | keys
 *   store ID OWNER TYPE HEX | generate ID OWNER TYPE LEN | fetch ID OWNER | remove ID OWNER
 *   fetch_exact ID OWNER        (type buffer exactly the type's length, as InnoDB passes)
 *   backend ID OWNER
 *   size LEN MODE BLOCK
 *   encrypt|decrypt ID OWNER MODE BLOCK PADDING IVHEX DATAHEX
 *   reinit                      (deinit, count the threads left, init and load again)
 *   waitfile PATH               (prints "RESULT waiting PATH", then waits for PATH to exist, at
 *                                most 300 s: the test changes the KMIP server meanwhile)
 * After the final deinit the host prints the threads left ("threads-after-deinit").
 * Each command prints one or more "RESULT ..." lines. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "component_keyring_okv.h"

static okvc_status_t log_emit(const char *component, const char *file, unsigned long line,
                         int severity, int error_id, ...) {
  va_list ap;
  (void)file;
  (void)line;
  va_start(ap, error_id);
  const char *message = va_arg(ap, const char *);
  va_end(ap);
  printf("LOG %d %d %s %s\n", severity, error_id, component, message);
  fflush(stdout);
  return 0;
}
static struct okvc_simple_log simple_log = {log_emit};

static okvc_status_t reg_acquire(const char *name, okvc_handle_t *out) {
  if (strcmp(name, "mysql_simple_error_log") == 0) {
    *out = &simple_log;
    return 0;
  }
  return 1;
}
static okvc_status_t reg_acquire_related(const char *name, okvc_handle_t related, okvc_handle_t *out) {
  (void)name;
  (void)related;
  (void)out;
  return 1;
}
static int released;
static okvc_status_t reg_release(okvc_handle_t h) {
  (void)h;
  released++;
  return 0;
}
static struct okvc_registry registry = {reg_acquire, reg_acquire_related, reg_release};

static struct okvc_component *comp;

static void *service(const char *name) {
  char full[256];
  snprintf(full, sizeof full, "%s.component_keyring_okv", name);
  for (struct okvc_service_ref *s = comp->provides; s->name; s++)
    if (strcmp(s->name, full) == 0) return s->implementation;
  fprintf(stderr, "service %s not provided\n", full);
  exit(3);
}

/* Threads of this process: the host's own plus whatever the component started. */
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

static const char *owner(const char *s) { return strcmp(s, "-") == 0 ? NULL : s; }

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

static void print_hex(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02X", p[i]);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s LIB COMPONENT_DIR INSTANCE_DIR|- COMMAND...\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  struct okvc_component *(*list)(void) = (struct okvc_component * (*)(void)) dlsym(lib, "list_components");
  if (!list) return 2;
  comp = list();
  printf("RESULT component %s\n", comp->name);
  for (struct okvc_placeholder_ref *r = comp->requires_service; r->name; r++) {
    printf("RESULT requires %s\n", r->name);
    if (strcmp(r->name, "registry") != 0) return 4;
    *r->implementation = &registry;
  }
  for (struct okvc_metadata_ref *m = comp->metadata; m->key; m++)
    printf("RESULT metadata %s=%s\n", m->key, m->value);
  printf("RESULT init %d\n", comp->init());

  const char *component_dir = argv[2];
  const char *instance_dir = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
  struct okvc_reader *rd = service("keyring_reader_with_status");
  struct okvc_writer *wr = service("keyring_writer");
  struct okvc_generator *gen = service("keyring_generator");
  struct okvc_iterator *keys = service("keyring_keys_metadata_iterator");
  struct okvc_iterator *meta = service("keyring_component_metadata_query");
  struct okvc_component_status *st = service("keyring_component_status");
  struct okvc_keyring_load *ld = service("keyring_load");
  struct okvc_keyring_aes *aes = service("keyring_aes");
  struct okvc_native_key_id *native = service("mysql_keyring_native_key_id");

  for (int i = 4; i < argc; i++) {
    const char *cmd = argv[i];
    if (strcmp(cmd, "load") == 0) {
      printf("RESULT load %d\n", ld->load(component_dir, instance_dir));
    } else if (strcmp(cmd, "reinit") == 0) {
      int rc = comp->deinit();
      int left = thread_count();
      int init = comp->init();
      printf("RESULT reinit deinit %d threads-after-deinit %d init %d load %d\n", rc, left, init,
             ld->load(component_dir, instance_dir));
    } else if (strcmp(cmd, "initialized") == 0) {
      printf("RESULT initialized %d\n", st->is_initialized() ? 1 : 0);
    } else if (strcmp(cmd, "status") == 0) {
      okvc_handle_t it = NULL;
      if (meta->init(&it)) return 5;
      for (; meta->is_valid(it); meta->next(it)) {
        size_t kl, vl;
        if (meta->get_length(it, &kl, &vl)) return 5;
        char *k = malloc(kl), *v = malloc(vl);
        /* The exact lengths (NUL included) must do; one byte less must be refused. */
        if (meta->get(it, k, kl - 1, v, vl) == 0) return 6;
        if (meta->get(it, k, kl, v, vl)) return 5;
        printf("RESULT row %s=%s\n", k, v);
        free(k);
        free(v);
      }
      meta->deinit(it);
    } else if (strcmp(cmd, "keys") == 0) {
      okvc_handle_t it = NULL;
      okvc_status_t rc = keys->init(&it);
      printf("RESULT keys_init %d\n", rc);
      if (rc) continue;
      for (; keys->is_valid(it); keys->next(it)) {
        size_t il, ol;
        if (keys->get_length(it, &il, &ol)) return 5;
        char *id = malloc(il + 1), *ow = malloc(ol + 1);
        if (keys->get(it, id, il, ow, ol + 1) == 0) return 6; /* no room for the NUL */
        if (keys->get(it, id, il + 1, ow, ol + 1)) return 5;
        printf("RESULT key %s|%s\n", id, ow);
        free(id);
        free(ow);
      }
      keys->deinit(it);
    } else if (strcmp(cmd, "store") == 0 && i + 4 < argc) {
      unsigned char data[20000];
      size_t n = unhex(argv[i + 4], data);
      printf("RESULT store %d\n", wr->store(argv[i + 1], owner(argv[i + 2]), data, n, argv[i + 3]));
      i += 4;
    } else if (strcmp(cmd, "generate") == 0 && i + 4 < argc) {
      printf("RESULT generate %d\n", gen->generate(argv[i + 1], owner(argv[i + 2]), argv[i + 3],
                                                   (size_t)atol(argv[i + 4])));
      i += 4;
    } else if (strcmp(cmd, "remove") == 0 && i + 2 < argc) {
      printf("RESULT remove %d\n", wr->remove(argv[i + 1], owner(argv[i + 2])));
      i += 2;
    } else if ((strcmp(cmd, "fetch") == 0 || strcmp(cmd, "fetch_exact") == 0) && i + 2 < argc) {
      int exact = strcmp(cmd, "fetch_exact") == 0;
      okvc_handle_t r = NULL;
      okvc_status_t rc = rd->init(argv[i + 1], owner(argv[i + 2]), &r);
      i += 2;
      if (rc) {
        printf("RESULT fetch error\n");
        continue;
      }
      if (!r) {
        printf("RESULT fetch absent\n");
        continue;
      }
      size_t dl, tl, ds, ts;
      if (rd->fetch_length(r, &dl, &tl)) return 7;
      unsigned char *d = malloc(dl + 1);
      char *t = calloc(tl + 2, 1);
      t[tl] = 'X'; /* must stay untouched with an exact-size type buffer */
      if (dl > 0 && rd->fetch(r, d, dl - 1, &ds, t, tl + 1, &ts) == 0) return 8;
      if (rd->fetch(r, d, dl, &ds, t, exact ? tl : tl + 1, &ts)) return 7;
      if (exact && t[tl] != 'X') return 9;
      if (!exact && t[tl] != 0) return 9;
      t[tl] = 0;
      printf("RESULT fetch %s %zu ", t, ds);
      print_hex(d, ds);
      printf("\n");
      rd->deinit(r);
      free(d);
      free(t);
    } else if (strcmp(cmd, "waitfile") == 0 && i + 1 < argc) {
      printf("RESULT waiting %s\n", argv[i + 1]);
      fflush(stdout);
      printf("RESULT waitfile %s\n", wait_for_file(argv[i + 1]) ? "resumed" : "timeout");
      i += 1;
    } else if (strcmp(cmd, "backend") == 0 && i + 2 < argc) {
      char buf[256];
      memset(buf, 'Z', sizeof buf);
      okvc_status_t rc = native->get_backend_key_id(argv[i + 1], owner(argv[i + 2]), buf, 64);
      printf("RESULT backend %d %s\n", rc, buf);
      i += 2;
    } else if (strcmp(cmd, "size") == 0 && i + 3 < argc) {
      size_t out = 0;
      okvc_status_t rc = aes->get_size((size_t)atol(argv[i + 1]), argv[i + 2], (size_t)atol(argv[i + 3]), &out);
      printf("RESULT size %d %zu\n", rc, out);
      i += 3;
    } else if ((strcmp(cmd, "encrypt") == 0 || strcmp(cmd, "decrypt") == 0) && i + 7 < argc) {
      unsigned char iv[64], data[4096], out[4200];
      unhex(argv[i + 6], iv);
      size_t n = unhex(argv[i + 7], data);
      size_t written = 0;
      okvc_aes_op op = strcmp(cmd, "encrypt") == 0 ? aes->encrypt : aes->decrypt;
      okvc_status_t rc = op(argv[i + 1], owner(argv[i + 2]), argv[i + 3], (size_t)atol(argv[i + 4]), iv,
                       atoi(argv[i + 5]), data, n, out, sizeof out, &written);
      printf("RESULT %s %d ", cmd, rc);
      if (rc == 0) print_hex(out, written);
      printf("\n");
      i += 7;
    } else {
      fprintf(stderr, "unknown or incomplete command %s\n", cmd);
      return 2;
    }
    fflush(stdout);
  }
  printf("RESULT deinit %d\n", comp->deinit());
  printf("RESULT threads-after-deinit %d\n", thread_count());
  printf("RESULT released %d\n", released);
  return 0;
}
