import { runProgram } from "./helpers/program";
test("scratch", async () => {
    const run = await runProgram({ "gcp:project": "test-project" });
    for (const r of run.resources) console.log(r.type, r.name, "parent=", r.parent, "deps=", r.dependsOn, "data=", r.dataDependencies.join(","), "secret=", r.secretInputs, r.provider);
    console.log(JSON.stringify(run.outputs, null, 1).slice(0, 2000), run.secretOutputs);
});
