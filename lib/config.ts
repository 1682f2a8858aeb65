/**
 * Command-line flags of each subcommand and the typed, validated configuration built from them. Every
 * default lives here. Flag names and defaults of the `node` subcommand are upstream's.
 */
import {
  type FlagSpecs,
  type FlagValues,
  parseDuration,
  parseInteger,
  parseSize,
  UsageError,
} from "./flags.ts";
import { parseVModule, type VModuleRule } from "./log.ts";
import { DRIVER_NAME } from "./version.ts";
import { DEFAULT_TMPFS_SIZE_BYTES } from "./mount/tmpfs.ts";

export const DEFAULT_PROVIDER_DIR = "/var/run/secrets-store-csi-providers";
export const DEFAULT_ADDITIONAL_PROVIDER_DIR = "/etc/kubernetes/secrets-store-csi-providers";
/** kubelet's --root-dir default; k0s, microk8s and others move it (upstream's Helm value kubeletRootDir). */
export const DEFAULT_KUBELET_ROOT_DIR = "/var/lib/kubelet";
/** grpc-go's default receive limit, which upstream keeps for provider responses. */
export const DEFAULT_MAX_RECV_BYTES = 4 * 1024 * 1024;

/**
 * `-v` and `--log-format-json` (upstream's), and klog's own flags, which upstream registers with
 * klog.InitFlags. Upstream v1.6 hands every klog line to its own logger on stderr, so klog's file and
 * header flags parse there and change nothing; they parse here likewise. `--vmodule` works as in klog.
 */
const LOGGING_FLAGS: FlagSpecs = {
  "log-format-json": {
    type: "boolean",
    help: "log one JSON object per line instead of klog text",
    default: false,
  },
  "v": { type: "string", help: "log verbosity: 0 quiet .. 5 chatty", default: "0" },
  "vmodule": {
    type: "string",
    help: "comma-separated pattern=N: verbosity N for source files matching pattern (klog's glob)",
    default: "",
  },
  "logtostderr": {
    type: "boolean",
    help: "klog flag, accepted as upstream (logs go to stderr)",
    default: true,
  },
  "alsologtostderr": { type: "boolean", help: "klog flag, accepted as upstream (no effect)", default: false },
  "stderrthreshold": { type: "string", help: "klog flag, accepted as upstream (no effect)", default: "2" },
  "one_output": { type: "boolean", help: "klog flag, accepted as upstream (no effect)", default: false },
  "skip_headers": { type: "boolean", help: "klog flag, accepted as upstream (no effect)", default: false },
  "skip_log_headers": {
    type: "boolean",
    help: "klog flag, accepted as upstream (no effect)",
    default: false,
  },
  "add_dir_header": { type: "boolean", help: "klog flag, accepted as upstream (no effect)", default: false },
  "log_dir": { type: "string", help: "klog flag, accepted as upstream (no effect)", default: "" },
  "log_file": { type: "string", help: "klog flag, accepted as upstream (no effect)", default: "" },
  "log_file_max_size": {
    type: "string",
    help: "klog flag, accepted as upstream (no effect)",
    default: "1800",
  },
  "log_backtrace_at": { type: "string", help: "klog flag, accepted as upstream (no effect)", default: "" },
};

const PROVIDER_DIR_FLAGS: FlagSpecs = {
  "provider-volume": {
    type: "string",
    help: "directory of provider sockets (<provider>.sock), searched after the additional paths",
    default: DEFAULT_PROVIDER_DIR,
  },
  "additional-provider-volume-paths": {
    type: "string",
    help: "comma-separated directories searched for provider sockets, in order, before --provider-volume",
    default: DEFAULT_ADDITIONAL_PROVIDER_DIR,
  },
  "max-call-recv-msg-size": {
    type: "string",
    help: "largest provider response accepted, in bytes",
    default: String(DEFAULT_MAX_RECV_BYTES),
  },
  "provider-timeout": {
    type: "string",
    help: "deadline of one provider Mount call, retries included (kubelet itself gives up after 2m)",
    default: "30s",
  },
  "tmpfs-size": {
    type: "string",
    help: "size cap of each volume's tmpfs (bytes, or with Ki/Mi/Gi)",
    default: String(DEFAULT_TMPFS_SIZE_BYTES),
  },
};

/** Flags of `node`: upstream's names and defaults, plus the standalone and tmpfs ones. */
export const NODE_FLAGS: FlagSpecs = {
  "endpoint": {
    type: "string",
    help: "CSI endpoint: unix:///path/csi.sock",
    default: "unix:///tmp/csi.sock",
  },
  "drivername": { type: "string", help: "name of the driver", default: DRIVER_NAME },
  "nodeid": { type: "string", help: "this node's name (kubelet's node name)", default: "" },
  ...PROVIDER_DIR_FLAGS,
  "metrics-addr": {
    type: "string",
    help: "listen address of the Prometheus metrics and /healthz endpoint; 0 turns it off",
    default: ":8095",
  },
  "metrics-backend": {
    type: "string",
    help: "metrics backend; Prometheus is the only one (as upstream)",
    default: "Prometheus",
  },
  "enable-pprof": {
    type: "boolean",
    help: "serve V8 heap snapshots and CPU profiles on 127.0.0.1:<pprof-port> (see README)",
    default: false,
  },
  "pprof-port": { type: "string", help: "port of the --enable-pprof server", default: "6065" },
  "enable-secret-rotation": {
    type: "boolean",
    help: "re-fetch secrets on kubelet's republish",
    default: false,
  },
  "rotation-poll-interval": {
    type: "string",
    help: "least time between two rotations of one volume",
    default: "2m",
  },
  "provider-health-check": {
    type: "boolean",
    help: "call Version on every known provider periodically",
    default: false,
  },
  "provider-health-check-interval": {
    type: "string",
    help: "interval of the provider health check",
    default: "2m",
  },
  "kubelet-root-dir": {
    type: "string",
    help: "kubelet's root directory (Helm value kubeletRootDir): volumes are mounted only below its pods/",
    default: DEFAULT_KUBELET_ROOT_DIR,
  },
  "kubeconfig": { type: "string", help: "kubeconfig file; default $KUBECONFIG, then the in-cluster account" },
  "spc-dir": {
    type: "string",
    help: "standalone mode: directory of SecretProviderClass YAML files, used when there is no cluster",
  },
  "version": { type: "boolean", help: "print the version and exit" },
  ...LOGGING_FLAGS,
};

/** Flags of `provider local`. */
export const PROVIDER_LOCAL_FLAGS: FlagSpecs = {
  "provider-volume": {
    type: "string",
    help: "directory where local.sock is created",
    default: DEFAULT_PROVIDER_DIR,
  },
  "root": { type: "string", help: "directory whose files are served as secret objects (required)" },
  ...LOGGING_FLAGS,
};

/** Flags of the one-shot `mount` debug command. */
export const MOUNT_FLAGS: FlagSpecs = {
  "spc": { type: "string", help: "SecretProviderClass YAML file (required)" },
  "target": { type: "string", help: "directory to mount the secrets on (required)" },
  "pod": { type: "string", help: "pod name sent to the provider", default: "debug" },
  "namespace": { type: "string", help: "pod namespace sent to the provider", default: "default" },
  ...PROVIDER_DIR_FLAGS,
  ...LOGGING_FLAGS,
};

/** Flags of the one-shot `unmount` debug command. */
export const UNMOUNT_FLAGS: FlagSpecs = {
  "target": { type: "string", help: "directory to unmount and remove (required)" },
  ...LOGGING_FLAGS,
};

/** Names (without dashes) of the `node` flags, for checks of manifests against the CLI. */
export function nodeFlagNames(): string[] {
  return Object.keys(NODE_FLAGS);
}

/** Names (without dashes) of the `provider local` flags. */
export function providerLocalFlagNames(): string[] {
  return Object.keys(PROVIDER_LOCAL_FLAGS);
}

export interface LoggingConfig {
  json: boolean;
  verbosity: number;
  /** `--vmodule`: per-file verbosity overrides, in flag order. */
  vmodule: VModuleRule[];
}

export interface ProviderConfig {
  /** Searched in order for `<provider>.sock`. */
  dirs: string[];
  maxRecvBytes: number;
  timeoutMs: number;
  tmpfsSizeBytes: number;
  /** `node`: targets must be kubelet volume paths below this root; unset (`mount`): any directory. */
  kubeletRootDir?: string;
}

export interface NodeConfig {
  endpoint: string;
  driverName: string;
  /** Empty when not given (upstream's default): NodeGetInfo answers "", SPCPS objects carry no node. */
  nodeId: string;
  provider: ProviderConfig;
  /** The metrics listen address; undefined when `--metrics-addr=0` turned it off. */
  metricsAddr?: string;
  /** The `--enable-pprof` port on 127.0.0.1; undefined when profiling is off. */
  pprofPort?: number;
  rotation: { enabled: boolean; pollIntervalMs: number };
  healthCheck: { enabled: boolean; intervalMs: number };
  kubeconfig?: string;
  spcDir?: string;
  logging: LoggingConfig;
}

export interface ProviderLocalConfig {
  socketDir: string;
  root: string;
  logging: LoggingConfig;
}

export interface MountConfig {
  spcFile: string;
  target: string;
  pod: string;
  namespace: string;
  provider: ProviderConfig;
  logging: LoggingConfig;
}

export interface UnmountConfig {
  target: string;
  logging: LoggingConfig;
}

const str = (values: FlagValues, name: string): string => (values[name] as string | undefined) ?? "";

function required(values: FlagValues, name: string): string {
  const value = str(values, name);
  if (value === "") throw new UsageError(`flag --${name} is required`);
  return value;
}

/** klog's severities, which --stderrthreshold takes by name or number. */
const KLOG_SEVERITIES = ["INFO", "WARNING", "ERROR", "FATAL", "0", "1", "2", "3"];

/** Checks the klog flags that have no effect as klog would parse them, so a typo is still an error. */
function checkKlogFlags(values: FlagValues): void {
  parseInteger("log_file_max_size", str(values, "log_file_max_size"));
  if (!KLOG_SEVERITIES.includes(str(values, "stderrthreshold").toUpperCase())) {
    throw new UsageError(
      `flag --stderrthreshold takes INFO, WARNING, ERROR or FATAL, not ${
        JSON.stringify(str(values, "stderrthreshold"))
      }`,
    );
  }
  if (!/^$|^[^:]+:\d+$/.test(str(values, "log_backtrace_at"))) {
    throw new UsageError(
      `flag --log_backtrace_at takes file:N, not ${JSON.stringify(str(values, "log_backtrace_at"))}`,
    );
  }
}

function loggingConfig(values: FlagValues): LoggingConfig {
  checkKlogFlags(values);
  return {
    json: values["log-format-json"] === true,
    verbosity: parseInteger("v", str(values, "v")),
    vmodule: parseVModule(str(values, "vmodule")),
  };
}

/**
 * The provider socket directories in upstream's search order: `--additional-provider-volume-paths`
 * (comma-separated), then `--provider-volume` (main.go appends it last). A directory named twice is
 * searched once, where it first appears.
 */
function providerDirs(values: FlagValues): string[] {
  const dirs = [
    ...str(values, "additional-provider-volume-paths").split(","),
    str(values, "provider-volume"),
  ].map((d) => d.trim()).filter((d) => d !== "");
  return [...new Set(dirs)];
}

/** `node`'s --kubelet-root-dir; undefined for the commands without the flag. An empty one is refused. */
function kubeletRootDir(values: FlagValues): string | undefined {
  const value = values["kubelet-root-dir"] as string | undefined;
  if (value === "") throw new UsageError("flag --kubelet-root-dir must name a directory");
  return value;
}

function providerConfig(values: FlagValues): ProviderConfig {
  return {
    dirs: providerDirs(values),
    maxRecvBytes: parseSize("max-call-recv-msg-size", str(values, "max-call-recv-msg-size")),
    timeoutMs: parseDuration("provider-timeout", str(values, "provider-timeout")),
    tmpfsSizeBytes: parseSize("tmpfs-size", str(values, "tmpfs-size")),
    kubeletRootDir: kubeletRootDir(values),
  };
}

/**
 * `--metrics-addr` as controller-runtime reads it: "0" turns the endpoint off and "" means ":8080".
 * `--metrics-backend` must name Prometheus (any case), the only backend upstream has.
 */
function metricsAddr(values: FlagValues): string | undefined {
  const backend = str(values, "metrics-backend");
  if (backend.toLowerCase() !== "prometheus") {
    throw new UsageError(
      `flag --metrics-backend: unsupported metrics backend ${
        JSON.stringify(backend)
      }; Prometheus is the only one`,
    );
  }
  const addr = str(values, "metrics-addr");
  if (addr === "0") return undefined;
  return addr === "" ? ":8080" : addr;
}

function port(flag: string, text: string): number {
  const n = parseInteger(flag, text);
  if (n < 1 || n > 65535) throw new UsageError(`flag --${flag} takes a port from 1 to 65535, not ${text}`);
  return n;
}

/** Validates parsed `node` flags (see NODE_FLAGS). */
export function nodeConfig(values: FlagValues): NodeConfig {
  return {
    endpoint: str(values, "endpoint"),
    driverName: required(values, "drivername"),
    nodeId: str(values, "nodeid"),
    provider: providerConfig(values),
    metricsAddr: metricsAddr(values),
    pprofPort: values["enable-pprof"] === true ? port("pprof-port", str(values, "pprof-port")) : undefined,
    rotation: {
      enabled: values["enable-secret-rotation"] === true,
      pollIntervalMs: parseDuration("rotation-poll-interval", str(values, "rotation-poll-interval")),
    },
    healthCheck: {
      enabled: values["provider-health-check"] === true,
      intervalMs: parseDuration(
        "provider-health-check-interval",
        str(values, "provider-health-check-interval"),
      ),
    },
    kubeconfig: str(values, "kubeconfig") || undefined,
    spcDir: str(values, "spc-dir") || undefined,
    logging: loggingConfig(values),
  };
}

/** Validates parsed `provider local` flags. */
export function providerLocalConfig(values: FlagValues): ProviderLocalConfig {
  return {
    socketDir: required(values, "provider-volume"),
    root: required(values, "root"),
    logging: loggingConfig(values),
  };
}

/** Validates parsed `mount` flags. */
export function mountConfig(values: FlagValues): MountConfig {
  return {
    spcFile: required(values, "spc"),
    target: required(values, "target"),
    pod: required(values, "pod"),
    namespace: required(values, "namespace"),
    provider: providerConfig(values),
    logging: loggingConfig(values),
  };
}

/** Validates parsed `unmount` flags. */
export function unmountConfig(values: FlagValues): UnmountConfig {
  return { target: required(values, "target"), logging: loggingConfig(values) };
}
