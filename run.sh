#!/usr/bin/env bash
# Runs KtZeroTrust on embedded defaults: all roles, SQLite registry in ./data, decision log in ./data/decisions.jsonl,
# development PKI generated into ./certs-dev on first start. Extra arguments are ASP.NET Core configuration,
# e.g. ./run.sh --ZeroTrust:Listeners:Device:Port=18443
set -euo pipefail
cd "$(dirname "$0")"
export ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}"
dotnet build src/KtZeroTrust.Server -c Release -v quiet -nologo
exec dotnet src/KtZeroTrust.Server/bin/Release/net10.0/KtZeroTrust.Server.dll "$@"
