using System.Net;
using System.Net.Sockets;

namespace KtZeroTrust.Tests.Common;

/// <summary>
/// Free TCP ports on loopback for servers the tests start. Taken below the kernel's ephemeral range (32768-60999 on
/// Linux), where no outgoing connection of a busy test run can take a port between the check and the server's bind
/// (port 0 hands out ephemeral ports, which a client connection could grab in that gap: seen as a rare
/// "address already in use" at fixture start). Each process walks its own stretch; every port is checked by binding it.
/// </summary>
public static class FreePorts
{
    private const int First = 20_000;
    private const int Last = 32_000;
    private static int _next = First + (Environment.ProcessId * 97 % (Last - First));

    public static int Next() => Next(1)[0];

    public static int[] Next(int count)
    {
        var ports = new int[count];
        for (var i = 0; i < count; i++)
        {
            ports[i] = Take();
        }

        return ports;
    }

    private static int Take()
    {
        for (var attempt = 0; attempt < Last - First; attempt++)
        {
            var port = First + ((Interlocked.Increment(ref _next) - First) % (Last - First));
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // in use (another test process, or a server still closing): the next one
            }
        }

        throw new InvalidOperationException($"No free loopback port between {First} and {Last}.");
    }
}
