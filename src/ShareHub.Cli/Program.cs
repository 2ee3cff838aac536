using System.CommandLine;
using ShareHub.Cli;

var root = new RootCommand("ShareHub: a policy-checked, audited data-sharing hub for WGS partnerships.");
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(PolicyCommands.Create());
root.Subcommands.Add(DeliveryCommands.Create());
root.Subcommands.Add(PartnerCommands.Create());
root.Subcommands.Add(PartnerCommands.CreateKeys());
root.Subcommands.Add(AuditCommands.Create());
root.Subcommands.Add(CaseCommands.Create());
return await root.Parse(args).InvokeAsync();
