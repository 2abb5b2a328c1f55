namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>The admin API's OpenAPI 3.0 description, served at <c>/api/openapi.json</c>. Kept next to the endpoints; change both together.</summary>
internal static class OpenApi
{
    public const string Document = """
    {
      "openapi": "3.0.3",
      "info": { "title": "KtZeroTrust admin API", "version": "1" },
      "components": {
        "securitySchemes": { "session": { "type": "http", "scheme": "bearer", "description": "Token from POST /api/login (the browser uses the zt_console cookie; its writes carry the anti-forgery token from GET /api/me in the X-ZT-Console header)" } },
        "schemas": {
          "Decision": { "type": "object", "properties": {
            "id": { "type": "string" }, "time": { "type": "string", "format": "date-time" }, "kind": { "type": "string" }, "listener": { "type": "string" },
            "subject": { "type": "string" }, "sourceAddress": { "type": "string" }, "sourcePort": { "type": "integer" }, "method": { "type": "string" }, "path": { "type": "string" },
            "route": { "type": "string" }, "outcome": { "type": "string", "enum": ["allow", "deny"] }, "reason": { "type": "string" },
            "certificateSha256": { "type": "string" }, "node": { "type": "string" }, "policyVersion": { "type": "string" }, "detail": { "type": "string" }, "latencyUs": { "type": "number" },
            "acknowledgedBy": { "type": "string", "description": "alerts only" }, "acknowledgedAt": { "type": "string", "format": "date-time", "description": "alerts only" },
            "severity": { "type": "string", "enum": ["critical", "high", "medium", "low"], "description": "alerts only" }, "assignee": { "type": "string", "description": "alerts only" } } },
          "Problem": { "type": "object", "properties": { "title": { "type": "string" }, "status": { "type": "integer" }, "detail": { "type": "string" } } }
        }
      },
      "security": [ { "session": [] } ],
      "paths": {
        "/api/login": { "post": { "summary": "Sign in; a one-time password must be replaced (newPassword)", "security": [],
          "requestBody": { "content": { "application/json": { "schema": { "type": "object", "properties": { "user": { "type": "string" }, "password": { "type": "string" }, "newPassword": { "type": "string" } } } } } },
          "responses": { "200": { "description": "token, user, role" }, "401": { "description": "wrong user or password" }, "429": { "description": "too many failed sign-ins for the account or source (Retry-After)" }, "403": { "description": "one-time password: newPassword required" } } } },
        "/api/password": { "post": { "summary": "Replace your own password (the current one is asked again); throttled like sign-in",
          "requestBody": { "content": { "application/json": { "schema": { "type": "object", "properties": { "currentPassword": { "type": "string" }, "newPassword": { "type": "string" } } } } } },
          "responses": { "204": { "description": "changed" }, "400": { "description": "new password too short" }, "403": { "description": "current password wrong" }, "429": { "description": "too many failures" } } } },
        "/api/logout": { "post": { "summary": "End the session", "responses": { "204": { "description": "signed out" } } } },
        "/api/me": { "get": { "summary": "Who is signed in", "responses": { "200": { "description": "user and role" } } } },
        "/api/devices": { "get": { "summary": "Device inventory (soc-analyst)",
          "parameters": [ { "name": "state", "in": "query", "schema": { "type": "string" } }, { "name": "site", "in": "query", "schema": { "type": "string" } },
            { "name": "q", "in": "query", "schema": { "type": "string" } }, { "name": "page", "in": "query", "schema": { "type": "integer" } }, { "name": "pageSize", "in": "query", "schema": { "type": "integer" } } ],
          "responses": { "200": { "description": "total, page, pageSize, items (state, site, firmware, last seen, source address, certificate expiry)" } } } },
        "/api/devices/{serial}": { "get": { "summary": "One device: record, certificates, lifecycle history, attestations, recent decisions",
          "parameters": [ { "name": "serial", "in": "path", "required": true, "schema": { "type": "string" } } ], "responses": { "200": { "description": "the device" }, "404": { "description": "no such device" } } } },
        "/api/devices/{serial}/actions": { "post": { "summary": "Lifecycle action (soc-admin): suspend, resume, revoke, decommission; reason required; audited",
          "parameters": [ { "name": "serial", "in": "path", "required": true, "schema": { "type": "string" } } ],
          "requestBody": { "content": { "application/json": { "schema": { "type": "object", "required": ["action", "reason"], "properties": { "action": { "type": "string", "enum": ["suspend", "resume", "revoke", "decommission"] }, "reason": { "type": "string" } } } } } },
          "responses": { "200": { "description": "new state" }, "400": { "description": "bad action or no reason" }, "403": { "description": "not soc-admin" }, "409": { "description": "transition not allowed" } } } },
        "/api/certificates": { "get": { "summary": "Certificates issued to a device, with revocation", "parameters": [ { "name": "serial", "in": "query", "required": true, "schema": { "type": "string" } } ], "responses": { "200": { "description": "certificates" } } } },
        "/api/decisions": { "get": { "summary": "Decisions, newest first",
          "parameters": [ { "name": "since", "in": "query", "schema": { "type": "string", "format": "date-time" } }, { "name": "until", "in": "query", "schema": { "type": "string", "format": "date-time" } },
            { "name": "outcome", "in": "query", "schema": { "type": "string" } }, { "name": "reason", "in": "query", "schema": { "type": "string" } }, { "name": "device", "in": "query", "schema": { "type": "string" } },
            { "name": "site", "in": "query", "schema": { "type": "string" }, "description": "the site's units (registry)" }, { "name": "source", "in": "query", "schema": { "type": "string" } },
            { "name": "user", "in": "query", "schema": { "type": "string" } }, { "name": "route", "in": "query", "schema": { "type": "string" } }, { "name": "kind", "in": "query", "schema": { "type": "string" } }, { "name": "limit", "in": "query", "schema": { "type": "integer" } } ],
          "responses": { "200": { "description": "decisions", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Decision" } } } } }, "503": { "description": "the decision store did not answer (Retry-After)" } } } },
        "/api/decisions/export": { "get": { "summary": "A query's result as CSV or OCSF JSON lines (same filters as /api/decisions, limit up to 100,000; audited)",
          "parameters": [ { "name": "format", "in": "query", "required": true, "schema": { "type": "string", "enum": ["csv", "ocsf"] } } ], "responses": { "200": { "description": "text/csv or application/x-ndjson, as an attachment" }, "400": { "description": "unknown format" } } } },
        "/api/decisions/stream": { "get": { "summary": "Live decisions as server-sent events (same filters)", "responses": { "200": { "description": "text/event-stream of Decision" } } } },
        "/api/summary": { "get": { "summary": "Allowed and denied (by reason) per bar over a range, and the top deny reasons",
          "parameters": [ { "name": "range", "in": "query", "schema": { "type": "string", "enum": ["hour", "day", "week", "custom"] } }, { "name": "since", "in": "query", "schema": { "type": "string", "format": "date-time" } }, { "name": "until", "in": "query", "schema": { "type": "string", "format": "date-time" } } ],
          "responses": { "200": { "description": "range, since, until, bucketSeconds, buckets (at, allow, deny, denyByReason), topDenyReasons" }, "400": { "description": "bad range" } } } },
        "/api/alerts": { "get": { "summary": "Alerts with severity, acknowledgement and assignee", "parameters": [ { "name": "status", "in": "query", "schema": { "type": "string", "enum": ["open"] } } ], "responses": { "200": { "description": "alerts" } } } },
        "/api/alerts/open": { "get": { "summary": "Unacknowledged alerts of the last 7 days, by severity", "responses": { "200": { "description": "open, bySeverity" } } } },
        "/api/alerts/{id}/case": { "get": { "summary": "An alert's case: device, site, evidence, decisions around it, certificates, attestations, steps", "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ], "responses": { "200": { "description": "the case" }, "404": { "description": "no such alert" } } } },
        "/api/alerts/{id}/ack": { "post": { "summary": "Acknowledge an alert (audited, a case step)", "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ], "responses": { "204": { "description": "acknowledged" } } } },
        "/api/alerts/{id}/assign": { "post": { "summary": "Assign the alert to an analyst (audited, a case step)", "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ],
          "requestBody": { "content": { "application/json": { "schema": { "type": "object", "properties": { "analyst": { "type": "string" } } } } } }, "responses": { "204": { "description": "assigned" }, "400": { "description": "no analyst" }, "404": { "description": "no such alert" } } } },
        "/api/alerts/{id}/notes": { "post": { "summary": "Add a note to the case (audited)", "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ],
          "requestBody": { "content": { "application/json": { "schema": { "type": "object", "properties": { "text": { "type": "string", "maxLength": 4000 } } } } } }, "responses": { "204": { "description": "added" }, "400": { "description": "empty or too long" }, "404": { "description": "no such alert" } } } },
        "/api/alerts/{id}/actions": { "post": { "summary": "Suspend or revoke the alert's device (soc-admin; reason required; audited, a case step)", "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ],
          "requestBody": { "content": { "application/json": { "schema": { "type": "object", "properties": { "action": { "type": "string", "enum": ["suspend", "revoke"] }, "reason": { "type": "string" } } } } } }, "responses": { "200": { "description": "new state" }, "403": { "description": "not soc-admin" }, "409": { "description": "transition not allowed" } } } },
        "/api/capacity": { "get": { "summary": "Enrollment and handshake capacity: served, deferred (enrollment_deferred) and shed (listener_busy) per bucket; who was deferred by site, prefix and node; this node's admission gauges", "parameters": [ { "name": "range", "in": "query", "schema": { "type": "string", "enum": ["hour", "day"] } } ], "responses": { "200": { "description": "buckets, deferred, shed, node" }, "400": { "description": "unknown range" } } } },
        "/api/fleet/map": { "get": { "summary": "Sites with coordinates, units by state, open alerts; units reported outside their site", "responses": { "200": { "description": "sites, moved" } } } },
        "/api/users": { "post": { "summary": "Add a console user (soc-admin); returns a one-time password",
          "requestBody": { "content": { "application/json": { "schema": { "type": "object", "properties": { "name": { "type": "string" }, "role": { "type": "string", "enum": ["soc-analyst", "soc-admin"] } } } } } },
          "responses": { "200": { "description": "name, role, oneTimePassword" } } } }
      }
    }
    """;
}
