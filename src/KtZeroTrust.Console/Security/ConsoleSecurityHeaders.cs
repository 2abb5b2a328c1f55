using KtZeroTrust.Hosting.Listeners;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace KtZeroTrust.SocConsole.Security;

/// <summary>
/// The console listener's security headers on every response it gives (the page, its scripts, the API, refusals,
/// <c>/metrics</c>): a strict Content-Security-Policy (own origin only, no framing), no MIME sniffing, no referrer.
/// Set as the response starts, so a refusal or an error page carries them too.
/// </summary>
public static class ConsoleSecurityHeaders
{
    /// <summary>
    /// Ahead of the whole pipeline (a startup filter), so even the responses of middleware the host adds before the
    /// application's own (authentication, authorization) carry the headers.
    /// </summary>
    internal sealed class StartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.UseConsoleSecurityHeaders();
            next(app);
        };
    }

    public const string ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    private static IApplicationBuilder UseConsoleSecurityHeaders(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Use((context, next) =>
        {
            if (ListenerContext.Get(context) == ListenerKind.Console)
            {
                // At send time: a refusal or error page clears the response's headers before it writes its own.
                context.Response.OnStarting(static state =>
                {
                    var headers = ((HttpResponse)state).Headers;
                    headers.ContentSecurityPolicy = ContentSecurityPolicy;
                    headers.XContentTypeOptions = "nosniff";
                    headers["Referrer-Policy"] = "no-referrer";
                    return Task.CompletedTask;
                }, context.Response);
            }

            return next(context);
        });
    }
}
