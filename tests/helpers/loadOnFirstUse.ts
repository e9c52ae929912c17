/**
 * Jest setup file (setupFiles, both tiers): packages @pulumi/pulumi requires at import for what this
 * program never does, TypeScript (runtime/closure/parseFunction.js, to serialize a function) and
 * npm's Arborist (runtime/closure/codePaths.js, to package a function's dependencies), are loaded
 * on first use instead. Together they were 0.6 of the SDK's 0.9 CPU-seconds of load, paid by every
 * test file that imports a component. Registered before the test file's own imports, so that its
 * first import of the SDK already skips them; a test that does use TypeScript (codeShape) gets the
 * real module on its first property read.
 */
function onFirstUse(name: string): object {
    let actual: Record<string | symbol, unknown> | undefined;
    const load = () => (actual ??= jest.requireActual(name));
    return new Proxy(
        {},
        {
            // Answered without loading: TypeScript's __importStar would otherwise copy every member at import.
            get: (_, key) => (key === "__esModule" ? true : load()[key]),
            has: (_, key) => key in load(),
        },
    );
}

for (const name of ["typescript", "@npmcli/arborist"]) {
    jest.doMock(name, () => onFirstUse(name));
}
