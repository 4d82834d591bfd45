// Prints the size of every C struct component_keyring_okv.so shares with mysqld and the
// offset of every member it relies on, compiled against the MySQL headers (9.7.4 in CI).
// The component's layout test compares each line with the Rust definitions.
#include <cstddef>
#include <cstdio>

#include <mysql/components/services/dynamic_loader.h>
#include <mysql/components/services/keyring_aes.h>
#include <mysql/components/services/keyring_generator.h>
#include <mysql/components/services/keyring_keys_metadata_iterator.h>
#include <mysql/components/services/keyring_load.h>
#include <mysql/components/services/keyring_metadata_query.h>
#include <mysql/components/services/keyring_reader_with_status.h>
#include <mysql/components/services/keyring_writer.h>
#include <mysql/components/services/mysql_keyring_native_key_id.h>
#include <mysql/components/services/mysql_simple_error_log.h>
#include <mysql/components/services/registry.h>

#define SIZE(T) std::printf("size %s %zu\n", #T, sizeof(T))
#define AT(T, m) std::printf("offset %s.%s %zu\n", #T, #m, offsetof(T, m))
#define SVC(n) SERVICE_TYPE_NO_CONST(n)
#define SSIZE(n) std::printf("size %s %zu\n", #n, sizeof(SVC(n)))
#define SAT(n, m) std::printf("offset %s.%s %zu\n", #n, #m, offsetof(SVC(n), m))

int main() {
  SIZE(mysql_service_status_t);
  SIZE(mysql_service_ref_t);
  AT(mysql_service_ref_t, name);
  AT(mysql_service_ref_t, implementation);
  SIZE(mysql_service_placeholder_ref_t);
  AT(mysql_service_placeholder_ref_t, name);
  AT(mysql_service_placeholder_ref_t, implementation);
  SIZE(mysql_metadata_ref_t);
  AT(mysql_metadata_ref_t, key);
  AT(mysql_metadata_ref_t, value);
  SIZE(mysql_component_t);
  AT(mysql_component_t, name);
  AT(mysql_component_t, provides);
  AT(mysql_component_t, requires_service);
  AT(mysql_component_t, metadata);
  AT(mysql_component_t, init);
  AT(mysql_component_t, deinit);

  SSIZE(registry);
  SAT(registry, acquire);
  SAT(registry, acquire_related);
  SAT(registry, release);
  SSIZE(mysql_simple_error_log);
  SAT(mysql_simple_error_log, emit);

  SSIZE(keyring_reader_with_status);
  SAT(keyring_reader_with_status, init);
  SAT(keyring_reader_with_status, deinit);
  SAT(keyring_reader_with_status, fetch_length);
  SAT(keyring_reader_with_status, fetch);
  SSIZE(keyring_writer);
  SAT(keyring_writer, store);
  SAT(keyring_writer, remove);
  SSIZE(keyring_generator);
  SAT(keyring_generator, generate);
  SSIZE(keyring_keys_metadata_iterator);
  SAT(keyring_keys_metadata_iterator, init);
  SAT(keyring_keys_metadata_iterator, deinit);
  SAT(keyring_keys_metadata_iterator, is_valid);
  SAT(keyring_keys_metadata_iterator, next);
  SAT(keyring_keys_metadata_iterator, get_length);
  SAT(keyring_keys_metadata_iterator, get);
  SSIZE(keyring_component_metadata_query);
  SAT(keyring_component_metadata_query, init);
  SAT(keyring_component_metadata_query, deinit);
  SAT(keyring_component_metadata_query, is_valid);
  SAT(keyring_component_metadata_query, next);
  SAT(keyring_component_metadata_query, get_length);
  SAT(keyring_component_metadata_query, get);
  SSIZE(keyring_component_status);
  SAT(keyring_component_status, is_initialized);
  SSIZE(keyring_load);
  SAT(keyring_load, load);
  SSIZE(keyring_aes);
  SAT(keyring_aes, get_size);
  SAT(keyring_aes, encrypt);
  SAT(keyring_aes, decrypt);
  SSIZE(mysql_keyring_native_key_id);
  SAT(mysql_keyring_native_key_id, get_backend_key_id);
  return 0;
}
