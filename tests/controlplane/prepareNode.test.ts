/**
 * prepare-node.sh's behaviour tests once more, with the real containerd of the pinned release
 * writing its default configuration and reading back the one the script edits (the stub harness
 * hands `containerd config default|dump` to CONTAINERD_BIN). Only prepare-node.test.ts: the host
 * file's tests (kernel modules, sysctl, ufw, apt's locks) assert nothing that containerd writes or
 * reads, and most of their time is spent holding apt's lock.
 */
import { binaries } from "./controlPlane";

process.env.CONTAINERD_BIN = binaries.containerd;
// A require, not an import: imports are hoisted above the line that names the binary.
// eslint-disable-next-line @typescript-eslint/no-require-imports
require("../scripts/prepare-node.test");
