/**
 * Plays kubelet for the charts' Helm hook Jobs on a control plane without nodes: each hook pod's kubectl
 * command runs here, under the pod's own ServiceAccount (a token from the TokenRequest API), against the
 * files its image and its ConfigMap volumes would hold; the pod is then reported Succeeded or Failed, so
 * that the Job controller completes the Job and `helm install`/`upgrade` go on as on a real cluster.
 */
import { join } from "node:path";
import { type Obj, runOk } from "./helm.ts";

/** One hook command as it ran. */
export interface HookRun {
  job: string;
  serviceAccount: string;
  args: string[];
  code: number;
  output: string;
}

export interface HookRunnerOptions {
  kubectl: string;
  adminKubeconfig: string;
  server: string;
  caCert: string;
  namespace: string;
  /** The files (path in the image: text) that stand in for each image's contents, by image reference. */
  imageFiles: Record<string, Record<string, string>>;
}

export class HookRunner {
  readonly runs: HookRun[] = [];
  /** Polls that failed (kept for the message of a test that then fails). */
  readonly pollErrors: string[] = [];
  #handled = new Set<string>();
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(private readonly options: HookRunnerOptions) {}

  /** Runs hook pods as they appear, until stop(). */
  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        // A failed poll (the API server busy, a pod gone meanwhile) is retried on the next round.
        await this.#runPending().catch((err) => this.pollErrors.push(String(err)));
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  #admin(args: string[]): Promise<string> {
    return runOk(this.options.kubectl, [`--kubeconfig=${this.options.adminKubeconfig}`, ...args]);
  }

  async #runPending(): Promise<void> {
    const pods = JSON.parse(
      await this.#admin([
        "get",
        "pods",
        "-n",
        this.options.namespace,
        "-l",
        "batch.kubernetes.io/job-name",
        "-o",
        "json",
      ]),
    ).items as Obj[];
    for (const pod of pods) {
      if (this.#handled.has(pod.metadata.uid) || pod.status?.phase !== "Pending") continue;
      const ok = await this.#runPod(pod);
      await this.#admin([
        "patch",
        "pod",
        pod.metadata.name,
        "-n",
        this.options.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({ status: { phase: ok ? "Succeeded" : "Failed" } }),
      ]);
      this.#handled.add(pod.metadata.uid); // only now: a pod whose status did not take runs again
    }
  }

  /** The pod's one container's kubectl command, run in a directory that holds the pod's files. */
  async #runPod(pod: Obj): Promise<boolean> {
    const container = pod.spec.containers[0];
    const root = await Deno.makeTempDir({ prefix: "sscsi-hook-pod-" });
    try {
      const imageFiles = this.options.imageFiles[container.image];
      if (!imageFiles) throw new Error(`no stand-in files for image ${container.image}`);
      for (const [path, text] of Object.entries(imageFiles)) await write(join(root, path), text);
      for (const mount of container.volumeMounts ?? []) {
        const volume = pod.spec.volumes.find((v: Obj) => v.name === mount.name);
        if (!volume?.configMap) continue; // the ServiceAccount token: we pass our own
        const configMap = JSON.parse(
          await this.#admin([
            "get",
            "configmap",
            volume.configMap.name,
            "-n",
            this.options.namespace,
            "-o",
            "json",
          ]),
        );
        for (const [key, text] of Object.entries(configMap.data as Record<string, string>)) {
          await write(join(root, mount.mountPath, key), text);
        }
      }
      const token = (await this.#admin([
        "create",
        "token",
        pod.spec.serviceAccountName,
        "-n",
        this.options.namespace,
      ])).trim();
      // Absolute paths are the container's: they live under root; relative ones are from its workdir, /.
      const args = (container.args as string[]).map((a) => a.startsWith("/") ? join(root, a) : a);
      const emptyConfig = join(root, ".kubeconfig");
      await Deno.writeTextFile(emptyConfig, "");
      const out = await new Deno.Command(this.options.kubectl, {
        args: [
          `--server=${this.options.server}`,
          `--certificate-authority=${this.options.caCert}`,
          `--token=${token}`,
          ...args,
        ],
        cwd: root,
        env: { KUBECONFIG: emptyConfig },
        stdin: "null",
      }).output();
      const text = new TextDecoder();
      this.runs.push({
        job: pod.metadata.labels["batch.kubernetes.io/job-name"],
        serviceAccount: pod.spec.serviceAccountName,
        args: container.args,
        code: out.code,
        output: text.decode(out.stdout) + text.decode(out.stderr),
      });
      return out.code === 0;
    } catch (err) {
      this.runs.push({
        job: pod.metadata.labels["batch.kubernetes.io/job-name"],
        serviceAccount: pod.spec.serviceAccountName,
        args: container.args,
        code: -1,
        output: String(err),
      });
      return false;
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
}

async function write(path: string, text: string): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text);
}
