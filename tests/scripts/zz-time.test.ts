import { createSandbox, runScript, writeRoot, setState } from "./harness";
test("time", () => {
  const sb = createSandbox();
  writeRoot(sb, "etc/os-release", "VERSION_CODENAME=noble\n");
  for (const p of ["curl","gpg","ca-certificates"]) setState(sb, `pkg/${p}`, "1");
  let t = Date.now();
  runScript(sb, "prepare-node", { K8S_MINOR: "1.36", CONTAINERD_MINOR: "2.2" });
  console.log("first", Date.now() - t); t = Date.now();
  runScript(sb, "prepare-node", { K8S_MINOR: "1.36", CONTAINERD_MINOR: "2.2" });
  console.log("second", Date.now() - t);
});
