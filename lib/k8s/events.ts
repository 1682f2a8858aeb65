/**
 * Kubernetes Events on pods, as upstream's recorder sends them (core/v1, source component
 * csi-secrets-store-controller). A failure that repeats on every retry is reported once per
 * `repeatAfterMs`, so a requeue loop does not flood the namespace's events.
 */
import { messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { KubeClient, KubeObject } from "./api.ts";

export const EVENT_SOURCE = "csi-secrets-store-controller";

/** Creates events; failing to report is logged, never thrown. */
export class EventRecorder {
  readonly #sent = new Map<string, number>();

  constructor(
    private readonly api: KubeClient,
    private readonly nodeId: string,
    private readonly log: Logger,
    private readonly repeatAfterMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Reports a Warning about `pod`. */
  async warn(pod: KubeObject, reason: string, message: string): Promise<void> {
    const { name, namespace, uid } = pod.metadata;
    const key = `${uid}\0${reason}\0${message}`;
    const now = this.now();
    const last = this.#sent.get(key);
    if (last !== undefined && now - last < this.repeatAfterMs) return;
    this.#sent.set(key, now);
    for (const [k, at] of this.#sent) if (now - at >= this.repeatAfterMs) this.#sent.delete(k);
    const time = new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z");
    try {
      await this.api.create("events", namespace!, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { generateName: `${name}.`, namespace },
        involvedObject: { apiVersion: "v1", kind: "Pod", name, namespace, uid },
        reason,
        message,
        type: "Warning",
        source: { component: EVENT_SOURCE, host: this.nodeId },
        reportingComponent: EVENT_SOURCE,
        reportingInstance: this.nodeId,
        firstTimestamp: time,
        lastTimestamp: time,
        count: 1,
      });
    } catch (err) {
      this.#sent.delete(key);
      this.log.warn("could not report an event", {
        pod: `${namespace}/${name}`,
        reason,
        error: messageOf(err),
      });
    }
  }
}
