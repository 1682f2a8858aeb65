/**
 * secrets-store-csi: the Secrets Store CSI driver. Parses the command line, dispatches to a subcommand
 * and turns failures into one line on stderr with exit code 2 (bad usage) or 1 (runtime failure). A
 * command line that is empty or starts with a flag runs `node`, as upstream's binary, so upstream's
 * DaemonSet and Helm chart args run unchanged.
 */
import {
  MOUNT_FLAGS,
  mountConfig,
  NODE_FLAGS,
  nodeConfig,
  PROVIDER_LOCAL_FLAGS,
  providerLocalConfig,
  UNMOUNT_FLAGS,
  unmountConfig,
} from "./lib/config.ts";
import { messageOf } from "./lib/errors.ts";
import { flagHelp, type FlagSpecs, type FlagValues, parseFlags, UsageError } from "./lib/flags.ts";
import { DRIVER_NAME, DRIVER_VERSION, upstreamVersionJson } from "./lib/version.ts";

interface Command {
  summary: string;
  flags: FlagSpecs;
  run(values: FlagValues): Promise<number>;
}

// Subcommands import their modules lazily: `version` and `--help` load neither gRPC nor FFI.
const COMMANDS: Record<string, Command> = {
  "node": {
    summary: "run the CSI node plugin (what the DaemonSet runs)",
    flags: NODE_FLAGS,
    run: async (values) => {
      if (values.version) {
        console.log(upstreamVersionJson());
        return 0;
      }
      const { runNode } = await import("./lib/commands/node.ts");
      return runNode(nodeConfig(values));
    },
  },
  "provider local": {
    summary: "serve the embedded `local` provider on <provider-volume>/local.sock",
    flags: PROVIDER_LOCAL_FLAGS,
    run: async (values) => {
      const { runProviderLocal } = await import("./lib/commands/provider-local.ts");
      return runProviderLocal(providerLocalConfig(values));
    },
  },
  "mount": {
    summary: "one-shot debug: mount the secrets of an SPC file on a directory, without kubelet",
    flags: MOUNT_FLAGS,
    run: async (values) => {
      const { runMount } = await import("./lib/commands/mount.ts");
      return runMount(mountConfig(values));
    },
  },
  "unmount": {
    summary: "one-shot debug: unmount and remove a directory mounted by `mount`",
    flags: UNMOUNT_FLAGS,
    run: async (values) => {
      const { runUnmount } = await import("./lib/commands/mount.ts");
      return runUnmount(unmountConfig(values));
    },
  },
  "version": { summary: "print the version", flags: {}, run: () => Promise.resolve(printVersion()) },
};

const HELP_FLAG = { type: "boolean", help: "show this help" } as const;

function printVersion(): number {
  console.log(`${DRIVER_NAME} ${DRIVER_VERSION}`);
  return 0;
}

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(16)}${c.summary}`);
  return `usage: secrets-store-csi <command> [flags]\n       secrets-store-csi [node flags]\n\n` +
    `commands:\n${lines.join("\n")}\n\n` +
    "`secrets-store-csi <command> --help` lists the command's flags. Without a command (flags only, as\n" +
    "upstream's DaemonSet passes them) it runs `node`.";
}

/** Finds the subcommand (one or two words) at the start of `args`; flags first means `node`. */
function findCommand(args: string[]): { name: string; rest: string[] } | undefined {
  if (args.length === 0 || args[0].startsWith("-")) return { name: "node", rest: args };
  const two = args.slice(0, 2).join(" ");
  if (COMMANDS[two]) return { name: two, rest: args.slice(2) };
  if (COMMANDS[args[0]]) return { name: args[0], rest: args.slice(1) };
  return undefined;
}

/** Runs the command line and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "--help" || args[0] === "-h" || args[0] === "-help" || args[0] === "help") {
    console.log(usage());
    return 0;
  }
  const found = findCommand(args);
  try {
    if (!found) {
      throw new UsageError(`unknown command ${JSON.stringify(args.join(" "))}; run --help for the list`);
    }
    const command = COMMANDS[found.name];
    // -h and -help too, as Go's flag package answers them.
    const { values } = parseFlags(found.rest, { ...command.flags, help: HELP_FLAG, h: HELP_FLAG });
    if (values.help || values.h) {
      console.log(
        `usage: secrets-store-csi ${found.name} [flags]\n\n${command.summary}\n\nflags:\n${
          flagHelp(command.flags)
        }`,
      );
      return 0;
    }
    return await command.run(values);
  } catch (err) {
    const prefix = found ? `secrets-store-csi ${found.name}` : "secrets-store-csi";
    console.error(`${prefix}: ${messageOf(err)}`);
    return err instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
