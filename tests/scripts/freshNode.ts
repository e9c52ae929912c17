/**
 * The node prepare-node.sh's tests start from, shared by the files that run it under stubs.
 */
import { versions } from "../../components/versions";
import { createSandbox, Sandbox, setState, writeRoot } from "./harness";

export const settings = { K8S_MINOR: "1.36", CONTAINERD_VERSION: versions.containerdPackage };
export const fstab = [
    "LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,commit=30,errors=remount-ro\t0 1",
    "LABEL=UEFI\t/boot/efi\tvfat\tumask=0077\t0 1",
    "/swap.img none swap sw 0 0",
    "",
].join("\n");

/** A fresh Ubuntu 24.04 cloud VM: curl/gpg/ca-certificates present, a swap entry, swap active. */
export function freshNode(): Sandbox {
    const sb = createSandbox();
    writeRoot(sb, "etc/os-release", 'NAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\nID=ubuntu\nUBUNTU_CODENAME=noble\n');
    writeRoot(sb, "etc/fstab", fstab);
    for (const pkg of ["curl", "gpg", "ca-certificates"]) {
        setState(sb, `pkg/${pkg}`, "1.0");
    }
    setState(sb, "swap-on");
    return sb;
}
