#!/usr/bin/env bash
# Enrollment end to end with the clients a unit's vendor ships, EST (openssl req + curl) against CMP (openssl cmp:
# ir, ip, certConf, pkiConf), interleaved round by round on the same server: the attestation (nonce, signed evidence)
# first, then the enrollment; both timed. Run against ./run.sh (default ports, certs-dev/). Usage: est-vs-cmp.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-10} C=certs-dev W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
FW=$(grep -A1 '"3.9.2"' $C/reference.json | sed -n 's/.*"sha256": "\(.*\)".*/\1/p')
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
attest() { # serial lat lon cell -> NONCE
  local ID="--cacert $C/tls-root.pem --cert $C/idevid/$1.pem --key $C/idevid/$1.key.pem"
  NONCE=$(curl -s $ID -X POST https://localhost:8444/attest/nonce | sed 's/.*"nonce":"\([^"]*\)".*/\1/')
  printf '{"serial":"%s","nonce":"%s","firmware":{"version":"3.9.2","sha256":"%s"},"config":{"ssh_enabled":false},"location":{"latitude":%s,"longitude":%s},"neighbourCells":["%s"],"bootCounter":12,"time":"%s"}' \
    $1 $NONCE $FW $2 $3 $4 $(date -u +%Y-%m-%dT%H:%M:%SZ) > $W/claims.json
  openssl cms -sign -binary -nodetach -in $W/claims.json -signer $C/idevid/$1.pem -inkey $C/idevid/$1.key.pem -outform DER -out $W/evidence.der
  curl -s $ID -H 'Content-Type: application/cms' --data-binary @$W/evidence.der https://localhost:8444/attest/evidence | grep -q '"result":"pass"'
}
est() {
  printf '[req]\nprompt=no\ndistinguished_name=dn\nattributes=a\n[dn]\nCN=%s\n[a]\nchallengePassword=%s\n' $1 $NONCE > $W/req.cnf
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $W/est.key -config $W/req.cnf -outform DER 2>/dev/null | base64 -w0 > $W/csr.b64
  curl -sf --cacert $C/tls-root.pem --cert $C/idevid/$1.pem --key $C/idevid/$1.key.pem -H 'Content-Type: application/pkcs10' \
    --data-binary @$W/csr.b64 https://localhost:8444/.well-known/est/simpleenroll > /dev/null
}
cmp() {
  openssl ecparam -name prime256v1 -genkey -noout -out $W/cmp.key
  openssl cmp -cmd ir -server https://localhost:8444 -path .well-known/cmp -tls_used -tls_trusted $C/tls-root.pem -trusted $C/operator-ca.pem \
    -cert $C/idevid/$1.pem -key $C/idevid/$1.key.pem -newkey $W/cmp.key -subject /CN=$1 -certout $W/cmp.pem > /dev/null 2>&1
}
declare -a est_ms cmp_ms att_ms
for r in $(seq 1 "$rounds"); do
  for proto in est cmp; do
    # The two LTE sample units of certs-dev (the firmware above), at their sites.
    if (( r % 2 )); then u=(FC-0003 35.1632 129.1636 450-08-0201-3001); else u=(FC-0004 36.3622 127.3566 450-08-0301-4001); fi
    t0=$(now_ms); attest "${u[@]}"; t1=$(now_ms); $proto ${u[0]}; t2=$(now_ms)
    att_ms+=($((t1 - t0)))
    if [ $proto = est ]; then est_ms+=($((t2 - t1))); else cmp_ms+=($((t2 - t1))); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
e=$(median "${est_ms[@]}") c=$(median "${cmp_ms[@]}") a=$(median "${att_ms[@]}")
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $rounds rounds each, interleaved"
echo "attestation (nonce + signed evidence, curl + openssl cms): median $a ms"
echo "EST simpleenroll (openssl req + curl): median $e ms -> $(( 1000 / (e > 0 ? e : 1) ))/s one unit at a time"
echo "CMP ir + certConf (openssl cmp):       median $c ms -> $(( 1000 / (c > 0 ? c : 1) ))/s one unit at a time; CMP/EST time = $(awk "BEGIN {printf \"%.2f\", $c / ($e > 0 ? $e : 1)}")x"
