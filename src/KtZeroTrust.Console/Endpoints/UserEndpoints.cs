using KtZeroTrust.Core.Decisions;
using KtZeroTrust.SocConsole.Accounts;
using KtZeroTrust.SocConsole.Auditing;
using KtZeroTrust.SocConsole.Authentication;
using static KtZeroTrust.SocConsole.Endpoints.ConsoleResults;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>Console accounts: administrators add analysts and administrators (each gets a one-time password).</summary>
internal static class UserEndpoints
{
    public static void Map(RouteGroupBuilder api)
        => api.MapPost("/users", AddAsync).RequireAuthorization(ConsolePolicies.Admin).RequireAntiforgeryForBrowsers();

    private sealed record UserRequest(string? Name, string? Role);

    private static async Task<IResult> AddAsync(HttpContext context, ConsoleUsers users, Audit audit)
    {
        var (read, request) = await ReadBodyAsync<UserRequest>(context);
        if (!read)
        {
            return Problem(StatusCodes.Status400BadRequest, "The body is not a JSON {name, role} object.");
        }

        try
        {
            var password = await users.AddAsync(request?.Name ?? "", request?.Role ?? "", context.RequestAborted);
            audit.Post(context, request!.Name, DecisionOutcome.Allow, ReasonCode.Allowed, "admin:user-add", $"{User(context)} added {request.Name} as {request.Role}");
            return Results.Json(new { name = request.Name, role = request.Role, oneTimePassword = password });
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            return Problem(StatusCodes.Status400BadRequest, ex.Message);
        }
    }
}
