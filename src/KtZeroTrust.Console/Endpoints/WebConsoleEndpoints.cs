using KtZeroTrust.Hosting.Listeners;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>The web console (three static files, no external assets: works offline) and the API's OpenAPI document.</summary>
internal static class WebConsoleEndpoints
{
    private static readonly (string Path, string File, string Type)[] Files =
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/console.js", "console.js", "text/javascript; charset=utf-8"),
        ("/console.css", "console.css", "text/css; charset=utf-8"),
    ];

    public static void Map(IEndpointRouteBuilder endpoints, RouteGroupBuilder api)
    {
        api.MapGet("/openapi.json", () => Results.Text(OpenApi.Document, "application/json"));
        foreach (var (path, file, type) in Files)
        {
            // Security headers: ConsoleSecurityHeaders, on every console response.
            endpoints.MapGet(path, () => Results.File(Path.Combine(AppContext.BaseDirectory, "wwwroot", "console", file), type))
                .RequireListener(ListenerKind.Console);
        }
    }
}
