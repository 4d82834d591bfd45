# The MariaDB part of the demo (scripts/demo.sh --mariadb), sourced by demo.sh once PyKMIP runs:
# kmip_key_management.so in a real MariaDB 10.11 (this machine's Debian 12 packages; the system
# service is never started), tables encrypted with keys 1 and 5 that live in the KMIP server,
# a rotation re-encrypted in the background, and the keys as the admin tool lists them.
# Expects from demo.sh: step, fail, keep, kmip_conf.

M=scripts/mariadb-real.sh
export KEYRING_OKV_MARIADB_PLUGIN="$PWD/target/release/libkmip_key_management.so"
msql() { bash "$M" sql demo "$1"; }
mshow() { printf 'MariaDB> %s\n' "$1"; msql "$1" | sed 's/^/       /'; }
mariadb_cleanup() {
  if ((keep == 0)); then
    bash "$M" stop demo >/dev/null 2>&1 || true
    bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
  fi
}
trap mariadb_cleanup EXIT

step "installing MariaDB 10.11 from Debian 12's packages (its system service is not started)"
bash "$M" install || fail "could not install MariaDB"

step "creating keys 1 and 5 on the KMIP server (namespace 'demo')"
for id in 1 5; do
  target/release/keyring-okv --conf-dir "$kmip_conf" mariadb create-key "$id" --namespace demo \
    | sed 's/^/       /' || fail "create-key $id failed"
done

step "starting mariadbd with plugin_load_add=kmip_key_management and kmip_key_management=FORCE"
bash "$M" reset demo >/dev/null 2>&1 || true
conf=$(bash "$M" conf demo "$kmip_conf")
chmod 750 "$conf" "$conf/ssl"
bash "$M" start demo --plugin-load-add=kmip_key_management --kmip-key-management=FORCE \
  "--kmip-key-management-conf-dir=$conf" --kmip-key-management-key-namespace=demo \
  --innodb-encrypt-tables=ON --innodb-encrypt-log=ON --innodb-encryption-threads=2 \
  --encrypt-binlog=ON --encrypt-tmp-files=ON --aria-encrypt-tables=ON \
  || fail "mariadbd did not start; see $(bash "$M" log demo)"
grep 'kmip_key_management' "$(bash "$M" log demo)" | sed 's/^/       log: /' || true
mshow "SELECT PLUGIN_NAME, PLUGIN_STATUS, LOAD_OPTION FROM information_schema.PLUGINS WHERE PLUGIN_TYPE='ENCRYPTION'"
mshow "SHOW GLOBAL VARIABLES LIKE 'kmip_key_management%'"

step "tables encrypted with key 1 and key 5"
mshow "CREATE DATABASE IF NOT EXISTS demo"
mshow "CREATE TABLE demo.system_key (id INT PRIMARY KEY, note TEXT) ENCRYPTION_KEY_ID=1"
mshow "CREATE TABLE demo.key5 (id INT PRIMARY KEY, note TEXT) ENCRYPTION_KEY_ID=5"
mshow "INSERT INTO demo.key5 VALUES (1, 'kept under key 5 of the KMIP server')"
mshow "SELECT * FROM demo.key5"
mshow "SELECT NAME, CURRENT_KEY_ID, MIN_KEY_VERSION, CURRENT_KEY_VERSION FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'demo/%'"

step "rotating key 5 twice; InnoDB's background threads re-encrypt demo/key5"
mshow "SET GLOBAL kmip_key_management_rotate_key = 5"
mshow "SET GLOBAL kmip_key_management_rotate_key = 5"
for _ in $(seq 60); do
  [[ "$(msql "SELECT MIN_KEY_VERSION FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME='demo/key5'")" == 3 ]] && break
  sleep 0.5
done
mshow "SELECT NAME, CURRENT_KEY_ID, MIN_KEY_VERSION, CURRENT_KEY_VERSION FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'demo/%'"

step "the key versions as keyring-okv lists them"
target/release/keyring-okv --conf-dir "$kmip_conf" mariadb list --namespace demo | sed 's/^/       /'

step "restart: the keys are read from the KMIP server again"
bash "$M" restart demo >/dev/null 2>&1 || fail "restart failed"
mshow "SELECT * FROM demo.key5"
mshow "SHOW GLOBAL STATUS LIKE 'kmip_key_management%'"

step "demo done"
if ((keep)); then
  cat <<EOT
mariadbd and PyKMIP keep running. Connect with:
  bash $M sql demo "SELECT * FROM demo.key5"
Stop everything with:
  bash $M stop demo && KEYRING_OKV_PYKMIP_NAME=demo bash scripts/pykmip.sh stop
EOT
else
  echo "Stopping mariadbd and PyKMIP (run scripts/demo.sh --mariadb --keep to leave them running)."
fi
exit 0
