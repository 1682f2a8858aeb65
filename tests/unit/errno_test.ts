import assert from "node:assert/strict";
import { DriverError, GrpcStatus } from "../../lib/errors.ts";
import {
  ERRNO,
  errnoName,
  explainMountError,
  explainUnmountError,
  SyscallError,
} from "../../lib/mount/errno.ts";

const TARGET = "/var/lib/kubelet/pods/p/volumes/kubernetes.io~csi/v/mount";
const DATA = "size=16777216,mode=0755,noswap";

Deno.test("errnoName names known values and numbers the rest", () => {
  assert.equal(errnoName(1), "EPERM");
  assert.equal(errnoName(ERRNO.ENAMETOOLONG), "ENAMETOOLONG");
  assert.equal(errnoName(9999), "errno 9999");
});

Deno.test("SyscallError carries the call, the path and errno", () => {
  const err = new SyscallError("mount", TARGET, ERRNO.EBUSY);
  assert.equal(err.code, "EBUSY");
  assert.equal(err.errno, 16);
  assert.equal(err.message, `mount(${JSON.stringify(TARGET)}) failed: EBUSY`);
});

Deno.test("every mount errno becomes a DriverError sentence that names the path and the errno", () => {
  const expected: [keyof typeof ERRNO, RegExp, GrpcStatus][] = [
    ["EPERM", /needs CAP_SYS_ADMIN: run as root \(or privileged\)/, GrpcStatus.INTERNAL],
    ["EACCES", /needs CAP_SYS_ADMIN/, GrpcStatus.INTERNAL],
    ["ENOENT", /target directory does not exist/, GrpcStatus.INTERNAL],
    ["ENOTDIR", /not a directory/, GrpcStatus.INTERNAL],
    ["EBUSY", /busy/, GrpcStatus.FAILED_PRECONDITION],
    ["EINVAL", /rejected the options "size=16777216,mode=0755,noswap"/, GrpcStatus.INTERNAL],
    ["ENOMEM", /out of memory/, GrpcStatus.INTERNAL],
    ["ELOOP", /too many symbolic links/, GrpcStatus.INTERNAL],
    ["ENAMETOOLONG", /too long/, GrpcStatus.INTERNAL],
    ["ENOSPC", /fs\.mount-max/, GrpcStatus.INTERNAL],
    ["ENODEV", /no tmpfs support/, GrpcStatus.INTERNAL],
    ["EIO", /the kernel refused/, GrpcStatus.INTERNAL],
  ];
  for (const [name, sentence, code] of expected) {
    const cause = new SyscallError("mount", TARGET, ERRNO[name]);
    const err = explainMountError(cause, { data: DATA });
    assert.ok(err instanceof DriverError);
    assert.equal(err.code, code, name);
    assert.match(err.message, sentence);
    assert.ok(err.message.includes(JSON.stringify(TARGET)), name);
    assert.ok(err.message.endsWith(`(mount(2) answered ${name})`), err.message);
    assert.equal(err.cause, cause);
  }
});

Deno.test("every umount2 errno becomes a DriverError sentence that names the path and the errno", () => {
  const expected: [keyof typeof ERRNO, RegExp, GrpcStatus][] = [
    ["EPERM", /needs CAP_SYS_ADMIN/, GrpcStatus.INTERNAL],
    ["EBUSY", /busy/, GrpcStatus.FAILED_PRECONDITION],
    ["EINVAL", /not a mount point, is a symbolic link/, GrpcStatus.INTERNAL],
    ["ENOENT", /does not exist/, GrpcStatus.INTERNAL],
    ["ENOTDIR", /not a directory/, GrpcStatus.INTERNAL],
    ["ENOMEM", /out of memory/, GrpcStatus.INTERNAL],
    ["ELOOP", /too many symbolic links/, GrpcStatus.INTERNAL],
    ["ENAMETOOLONG", /too long/, GrpcStatus.INTERNAL],
    ["EIO", /the kernel refused/, GrpcStatus.INTERNAL],
  ];
  for (const [name, sentence, code] of expected) {
    const err = explainUnmountError(new SyscallError("umount2", TARGET, ERRNO[name]));
    assert.equal(err.code, code, name);
    assert.match(err.message, sentence);
    assert.ok(err.message.includes(JSON.stringify(TARGET)), name);
    assert.ok(err.message.endsWith(`(umount2(2) answered ${name})`), err.message);
  }
});
