using System.Text.Json;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>What every console endpoint answers with: problem+json refusals and JSON bodies read without throwing.</summary>
internal static class ConsoleResults
{
    public static IResult Problem(int status, string detail) => Results.Problem(detail: detail, statusCode: status);

    /// <summary>The JSON body; <c>Read</c> is false when the body is not JSON or not of that shape (the caller answers 400).</summary>
    public static async Task<(bool Read, T? Body)> ReadBodyAsync<T>(HttpContext context)
    {
        try
        {
            return (true, await context.Request.ReadFromJsonAsync<T>(context.RequestAborted));
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return (false, default); // InvalidOperationException: not a JSON content type
        }
    }

    /// <summary>The signed-in user (the endpoint's authorization policy guarantees there is one).</summary>
    public static string User(HttpContext context) => context.User.Identity?.Name ?? throw new InvalidOperationException("No console user on an authorized endpoint.");
}
