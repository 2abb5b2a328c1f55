using KtZeroTrust.Cli.Commands;

return await Ztctl.RunAsync(args, Console.Out, Console.Error);
