/**
 * The shape the code keeps (style notes: constructors read as a short list of named steps).
 */
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

const componentsDir = path.join(__dirname, "..", "components");
const maxFunctionLines = 120;

/** Every function-like body in a source file with its first line and its length in lines. */
function functionLengths(file: string): { where: string; lines: number }[] {
    const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
    const found: { where: string; lines: number }[] = [];
    const visit = (node: ts.Node) => {
        if (ts.isFunctionLike(node) && "body" in node && node.body) {
            const first = source.getLineAndCharacterOfPosition(node.getStart()).line;
            const last = source.getLineAndCharacterOfPosition(node.end).line;
            found.push({ where: `${path.basename(file)}:${first + 1}`, lines: last - first + 1 });
        }
        ts.forEachChild(node, visit);
    };
    visit(source);
    return found;
}

test(`no function in components/ runs past ${maxFunctionLines} lines`, () => {
    const files = fs.readdirSync(componentsDir).filter((f) => f.endsWith(".ts")).map((f) => path.join(componentsDir, f));
    const all = files.flatMap(functionLengths);
    expect(all.length).toBeGreaterThan(50);
    expect(all.filter((f) => f.lines > maxFunctionLines)).toEqual([]);
});
