#!/usr/bin/env bash
# A security gateway and a femtocell as two network namespaces on this machine, strongSwan in each:
#   host (KtZeroTrust: OCSP, CRL) 10.77.1.1 --veth-- 10.77.1.2 [SeGW: charon, swanctl.conf] 10.77.2.1 --veth-- 10.77.2.2 [femtocell: charon, femtocell.conf]
# Needs root, iproute2 and strongswan-charon, strongswan-swanctl, libcharon-extra-plugins (curl).
#   segw-lab.sh up      LAB PKI_DIR OCSP_URL CRL_URL   namespaces, the SeGW's certificate (operator CA), charon started
#   segw-lab.sh connect LAB PKI_DIR SERIAL             the femtocell dials with its LDevID; prints "established" or "refused: ..."
#   segw-lab.sh verify  LAB PKI_DIR CERT               strongSwan's pki --verify --online from the SeGW (OCSP from the AIA)
#   segw-lab.sh down    LAB                            stops both daemons, deletes namespaces and files
# Traffic stays on these namespaces' addresses; nothing leaves the machine.
set -euo pipefail
cmd=$1 lab=$2
segw=zt-segw-$lab femto=zt-femto-$lab work=/tmp/zt-segw-lab-$lab
here=$(cd "$(dirname "$0")" && pwd)

# Every directory swanctl --load-all reads (it complains about each one missing).
subdirs() { for d in x509 x509ca x509ocsp x509aa x509ac x509crl pubkey private rsa ecdsa bliss pkcs8 pkcs12; do mkdir -p "$1/swanctl/$d"; done; }

up() {
  local pki=$1 ocsp=$2 crl=$3
  # One lab at a time owns 10.77.1.1: a second one would route the SeGW's OCSP requests into the first.
  if held=$(ip -br addr | awk '/ 10\.77\.1\.1\//{print $1}' | cut -d@ -f1) && [ -n "$held" ]; then
    echo "another SeGW lab holds 10.77.1.1 (interface $held): stop it first (segw-lab.sh down ${held#zh})" >&2
    exit 1
  fi
  trap 'down' ERR # a step that fails takes the half-built lab down with it
  mkdir -p "$work"
  ip netns add "$segw"; ip netns add "$femto"
  ip link add "zh$lab" type veth peer name "zs$lab"; ip link set "zs$lab" netns "$segw"
  ip link add "zg$lab" type veth peer name "zf$lab"; ip link set "zg$lab" netns "$segw"; ip link set "zf$lab" netns "$femto"
  ip addr add 10.77.1.1/30 dev "zh$lab"; ip link set "zh$lab" up
  ip -n "$segw" addr add 10.77.1.2/30 dev "zs$lab"; ip -n "$segw" link set "zs$lab" up
  ip -n "$segw" addr add 10.77.2.1/30 dev "zg$lab"; ip -n "$segw" link set "zg$lab" up
  ip -n "$femto" addr add 10.77.2.2/30 dev "zf$lab"; ip -n "$femto" link set "zf$lab" up
  for ns in "$segw" "$femto"; do ip -n "$ns" link set lo up; done

  # The SeGW's own certificate, from the operator CA (TS 33.310), its address in the SAN.
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/segw.key.pem" 2>/dev/null
  openssl req -new -key "$work/segw.key.pem" -subj "/O=KtZeroTrust Operator/CN=segw-$lab" -out "$work/segw.csr" 2>/dev/null
  printf 'subjectAltName=IP:10.77.2.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' > "$work/segw.ext"
  openssl x509 -req -in "$work/segw.csr" -CA "$pki/operator-ca.pem" -CAkey "$pki/operator-ca.key.pem" -CAcreateserial \
    -CAserial "$work/ca.srl" -days 1 -sha256 -extfile "$work/segw.ext" -out "$work/segw.pem" 2>/dev/null

  # What the namespace sees as /etc (ip netns exec mounts /etc/netns/NAME/* over /etc/*): strongSwan's files, and a CA
  # bundle holding the development TLS root, so the SeGW's OCSP and CRL fetches over https trust our listener.
  local etc=/etc/netns/$segw
  mkdir -p "$etc/ssl/certs"; subdirs "$etc"
  cp "$work/segw.pem" "$etc/swanctl/x509/"; cp "$work/segw.key.pem" "$etc/swanctl/private/"; cp "$pki/operator-ca.pem" "$etc/swanctl/x509ca/"
  cp "$pki/tls-root.pem" "$etc/ssl/certs/ca-certificates.crt"
  sed -e "s|@SEGW_ADDRESS@|10.77.2.1|g" -e "s|@OCSP_URL@|$ocsp|g" -e "s|@CRL_URL@|$crl|g" -e "s|@TUNNEL_SUBNET@|10.77.1.0/30|g" -e "s|@INNER_POOL@|10.77.3.0/28|g" "$here/swanctl.conf" > "$etc/swanctl/swanctl.conf"
  sed -e "s|@VICI_SOCKET@|unix://$work/segw.vici|" "$here/strongswan.conf" > "$etc/strongswan.conf"
  local fetc=/etc/netns/$femto
  subdirs "$fetc"
  cp "$pki/operator-ca.pem" "$fetc/swanctl/x509ca/"
  sed -e "s|@VICI_SOCKET@|unix://$work/femto.vici|" "$here/strongswan.conf" > "$fetc/strongswan.conf"

  # charon writes /run/charon.pid: each daemon gets a /run of its own.
  for side in segw femto; do
    local ns=zt-$side-$lab
    ip netns exec "$ns" unshare -m sh -c 'mount -t tmpfs tmpfs /run && exec /usr/lib/ipsec/charon' > "$work/$side.log" 2>&1 &
    echo $! > "$work/$side.pid"
    for _ in $(seq 1 100); do [ -S "$work/$side.vici" ] && break; sleep 0.1; done
  done
  ip netns exec "$segw" swanctl --load-all --uri "unix://$work/segw.vici" >> "$work/segw.log" 2>&1
  echo "up: SeGW 10.77.2.1 (log $work/segw.log), OCSP $ocsp"
}

connect() {
  local pki=$1 serial=$2 fetc=/etc/netns/$femto
  local id; id=$(openssl x509 -in "$pki/ldevid/$serial.pem" -noout -subject -nameopt sep_comma_plus_space,sname | sed 's/^subject=//')
  rm -f "$fetc"/swanctl/x509/* "$fetc"/swanctl/private/*
  cp "$pki/ldevid/$serial.pem" "$fetc/swanctl/x509/ldevid.pem"; cp "$pki/ldevid/$serial.key.pem" "$fetc/swanctl/private/ldevid.key.pem"
  sed -e "s|@IDENTITY@|$id|" "$here/femtocell.conf" > "$fetc/swanctl/swanctl.conf"
  local vici=unix://$work/femto.vici
  ip netns exec "$femto" swanctl --load-all --clear --uri "$vici" >> "$work/femto.log" 2>&1
  # A fresh IKE_SA every time: the SeGW authenticates (and asks OCSP) anew.
  if out=$(ip netns exec "$femto" swanctl --initiate --child core --timeout 15 --uri "$vici" 2>&1); then
    echo established
  else
    echo "refused: $(echo "$out" | grep -E 'AUTHENTICATION_FAILED|failed|timeout' | head -1)"
  fi
  ip netns exec "$femto" swanctl --terminate --ike segw --timeout 5 --uri "$vici" > /dev/null 2>&1 || true
}

verify() {
  # The SeGW's namespace, so its CA bundle (the development TLS root) and its route to the host are the ones used.
  ip netns exec "$segw" pki --verify --in "$2" --cacert "$1/operator-ca.pem" --online 2>&1
}

down() {
  [ -f "$work/segw.pid" ] && kill "$(cat "$work/segw.pid")" 2>/dev/null || true
  [ -f "$work/femto.pid" ] && kill "$(cat "$work/femto.pid")" 2>/dev/null || true
  for ns in "$segw" "$femto"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; done
  ip link del "zh$lab" 2>/dev/null || true
  rm -rf "/etc/netns/$segw" "/etc/netns/$femto"
  [ "${KEEP_LOGS:-}" = 1 ] || rm -rf "$work"
}

case $cmd in
  up) up "$3" "$4" "$5" ;;
  connect) connect "$3" "$4" ;;
  verify) verify "$3" "$4" ;;
  down) down ;;
  *) echo "usage: $0 up|connect|verify|down LAB ..." >&2; exit 1 ;;
esac
