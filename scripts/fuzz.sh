#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input with cargo-fuzz (libFuzzer, nightly toolchain):
#   ttlv_decode    the TTLV decoder (round trip of what it accepts)
#   kmip_response  response framing, single and batch decoders, every payload parser
#   okvclient_ora  the okvclient.ora parser
#   ssl_dir        the ssl/ loader: CA.pem, cert.pem, key.pem (plain and encrypted), password.txt
#   component_cnf  the component's JSON configuration (component_keyring_okv.cnf)
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 60); CI runs this
#   scripts/fuzz.sh 3600 kmip_response     a long run of one target
#
# Seed corpora are made at run time in fuzz/corpus/<target>/ from tests/vectors/ and from
# keys and certificates openssl makes (kept between runs, so long runs build on earlier ones).
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script; copy it to
# tests/fuzz_regressions/<target>/ so that `cargo test --test fuzz_regressions` keeps it fixed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(ttlv_decode kmip_response okvclient_ora ssl_dir component_cnf)

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "==> installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal >/dev/null
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked -j2 >/dev/null
fi

corpus=fuzz/corpus
mkdir -p "$corpus"/{ttlv_decode,kmip_response,okvclient_ora,ssl_dir,component_cnf}

# KMIP: the OASIS vectors as bytes (both decoders take requests and responses alike).
for f in tests/vectors/*.hex; do
  name=$(basename "$f" .hex)
  grep -v '^#' "$f" | tr -d ' \n\r\t' | perl -ne 'print pack("H*", $_)' >"$corpus/ttlv_decode/$name"
  cp "$corpus/ttlv_decode/$name" "$corpus/kmip_response/$name"
done

# okvclient.ora: the shapes the documentation and the tests use.
ora=$corpus/okvclient_ora
printf 'SERVER=127.0.0.1:5696\n' >"$ora/server"
printf '# comment\nSERVER=kms.example.com:5696\nSTANDBY_SERVER=10.0.0.2:5696,10.0.0.3:5696\n' >"$ora/standby"
printf 'SERVER=[::1]:5696\r\nSSL_CIPHER_SUITES=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\r\n' >"$ora/ipv6-crlf"
printf 'SERVER=127.0.0.1:5696\nKEYRING_OKV_CONNECT_TIMEOUT=5\nKEYRING_OKV_VERIFY_SERVER_NAME=NO\n' >"$ora/options"
printf '\xef\xbb\xbfSERVER = host:1\n' >"$ora/bom-spaces"

# component_keyring_okv.cnf: valid files (the documented keys, Oracle's component_keyring_kmip
# file) and invalid ones (each error the parser names).
cnf=$corpus/component_cnf
printf '{"kmip_configuration_directory": "/etc/mysql/okv"}\n' >"$cnf/minimal"
printf '{\n  "read_local_config": false,\n  "kmip_configuration_directory": "/etc/mysql/okv",\n  "server": "kms1.example.com:5696",\n  "standby_server": ["kms2:5696", "[::1]:5696"],\n  "cache_keys": true,\n  "cache_ttl_seconds": 600,\n  "connect_timeout": 5,\n  "request_timeout": 0.5,\n  "failover_stagger": 0,\n  "verify_server_name": true\n}\n' >"$cnf/full"
printf '{"kmip_configuration_directory": "/okv", "server": "10.0.0.1:5696", "standby_server": "10.0.0.2:5696, 10.0.0.3:5696", "cache_ttl_seconds": 0, "extra": 1}' >"$cnf/standby-string"
printf '{"kmip_configuration_directory": "okv/relative"}' >"$cnf/relative"
printf '{"kmip_configuration_directory": "/okv", "standby_server": "h:1"}' >"$cnf/standby-alone"
printf '{"kmip_configuration_directory": "/okv", "connect_timeout": 1, "failover_stagger": 2, "cache_ttl_seconds": -1}' >"$cnf/bad-values"
printf '{"kmip_configuration_directory": 7, "cache_keys": "yes"}' >"$cnf/wrong-types"
printf '["/okv"]' >"$cnf/not-an-object"
printf '{"kmip_configuration_directory": "/okv",\n  "server": "h:1",,}' >"$cnf/syntax"

# ssl/: keys in every format the loader reads, plain and encrypted, and certificates.
ssl=$corpus/ssl_dir
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  openssl ecparam -name prime256v1 -genkey -noout -out ec-sec1.pem 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in ec-sec1.pem -out ec-pkcs8.pem
  openssl genrsa -traditional -out rsa-pkcs1.pem 1024 2>/dev/null ||
    openssl genrsa -out rsa-pkcs1.pem 1024 2>/dev/null
  openssl pkcs8 -topk8 -in ec-sec1.pem -passout pass:pw -v2 aes-256-cbc -out ec-pbes2.pem
  openssl pkcs8 -topk8 -in ec-sec1.pem -passout pass:pw -v1 PBE-SHA1-3DES -out ec-pbes1.pem
  openssl ec -in ec-sec1.pem -aes256 -passout pass:pw -out ec-legacy.pem 2>/dev/null
  openssl rsa -in rsa-pkcs1.pem -traditional -des3 -passout pass:pw -out rsa-legacy.pem 2>/dev/null ||
    openssl rsa -in rsa-pkcs1.pem -des3 -passout pass:pw -out rsa-legacy.pem 2>/dev/null
  openssl req -x509 -new -key ec-sec1.pem -subj /CN=seed -days 30 -out cert.pem 2>/dev/null
)
for k in ec-sec1 ec-pkcs8 rsa-pkcs1; do { printf '\0'; cat "$work/$k.pem"; } >"$ssl/key-$k"; done
for k in ec-pbes2 ec-pbes1 ec-legacy rsa-legacy; do { printf '\3pw\n'; cat "$work/$k.pem"; } >"$ssl/key-$k"; done
{ printf '\1'; cat "$work/cert.pem"; } >"$ssl/cert"
{ printf '\2'; cat "$work/cert.pem" "$work/cert.pem"; } >"$ssl/ca"

status=0
for t in "${targets[@]}"; do
  echo "==> fuzzing $t for $seconds s"
  log=$(mktemp)
  if ! cargo +nightly fuzz run "$t" "$corpus/$t" -- -max_total_time="$seconds" -max_len=65536 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    status=1
    tail -n 40 "$log"
    echo "==> $t FAILED; the input is in fuzz/artifacts/$t/"
  fi
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  echo "==> $t: ${execs:-?} executions in $seconds s, corpus $(ls "$corpus/$t" | wc -l) inputs"
  rm -f "$log"
done
exit "$status"
