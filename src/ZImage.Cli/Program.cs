// The zimage command. Subcommands are added in Commands/ (generate, plan, replay, info).
return ZImage.Cli.CliApp.Run(args);
