/**
 * The per-volume path upstream takes, done by the bench itself for comparison: exec `mount -t tmpfs`,
 * write the files through a temp dir + rename (kubelet AtomicWriter's layout), exec `umount`.
 */
import { basename, dirname, join } from "node:path";
import { seededBytes, SMALL_FILES } from "./fixture.ts";

/** The same files the local provider serves for the small volume: path in the volume, mode, bytes. */
const FILES = SMALL_FILES.map(({ object, size }, i) => {
  const path = object.slice("small/".length).replace(/^api-token$/, "token");
  return { path, mode: path === "db/password" ? 0o400 : 0o644, contents: seededBytes(size, 1 + i) };
});

async function exec(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${command} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** mkdir the target, exec mount(8), write the files into a temp dir and rename a `..data` link over. */
export async function baselinePublish(target: string, sizeBytes: number): Promise<void> {
  await Deno.mkdir(target, { recursive: true, mode: 0o750 });
  await exec("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0755,nosuid,nodev`, "tmpfs", target]);
  const dir = await Deno.makeTempDir({ dir: target, prefix: "..bench." });
  for (const file of FILES) {
    await Deno.mkdir(join(dir, dirname(file.path)), { recursive: true });
    await Deno.writeFile(join(dir, file.path), file.contents, { createNew: true, mode: file.mode });
  }
  await Deno.symlink(basename(dir), join(target, "..data_tmp"));
  await Deno.rename(join(target, "..data_tmp"), join(target, "..data"));
  for (const name of new Set(FILES.map((f) => f.path.split("/")[0]))) {
    await Deno.symlink(`..data/${name}`, join(target, name));
  }
}

/** exec umount(8) and remove the target directory. */
export async function baselineUnpublish(target: string): Promise<void> {
  await exec("umount", [target]);
  await Deno.remove(target);
}
