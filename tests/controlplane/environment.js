// Node's test environment plus one fact the control-plane harness needs: whether any test of the
// file failed, so that its logs are kept for reading instead of deleted (jest has no API for it).
const { TestEnvironment } = require("jest-environment-node");

class ControlPlaneEnvironment extends TestEnvironment {
    constructor(config, context) {
        super(config, context);
        this.global.__controlPlaneTestFailed = () => this.failed === true;
    }

    async handleTestEvent(event) {
        if ((event.name === "test_done" && event.test.errors.length > 0) || event.name === "hook_failure") {
            this.failed = true;
        }
    }
}

module.exports = ControlPlaneEnvironment;
