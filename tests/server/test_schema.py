"""test_schema.py — schemathesis (PyPI) against the server's own /openapi.json: every operation gets generated valid
and invalid requests; no 5xx, every status code, content type, header and body as the document says, invalid data
refused, undeclared methods answered 405. The server runs with small limits (32x32, 2 steps, 2 images), which the
document carries, so that the generations it accepts stay quick; it must be alive at the end and exit 0."""
import os
import subprocess
import sys

import sdtest as T
from sdtest import Server

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,negative_data_rejection,unsupported_method")


def main():
    d = os.path.join(T.WORK, "schema-models")
    os.makedirs(d, exist_ok=True)
    if not os.path.lexists(os.path.join(d, "shapes")):
        os.symlink(T.DEMO, os.path.join(d, "shapes"))
    srv = Server("--models-dir", d, "--max-size", "32", "--max-steps", "2", "--max-images", "2", "--queue", "8", name="schema")
    st = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    try:
        r = subprocess.run([st, "run", "http://127.0.0.1:%d/openapi.json" % srv.port, "-c", CHECKS, "-n", "20", "-w", "1",
                            "--seed", "1", "--request-timeout", "300", "--generation-database", "none", "--no-color",
                            "--report", "junit", "--report-dir", os.path.join(T.WORK, "schemathesis")],
                           capture_output=True, text=True, cwd=T.WORK, timeout=3000)
        summary = r.stdout[r.stdout.find("=== SUMMARY"):] if "=== SUMMARY" in r.stdout else r.stdout[-3000:]
        print(summary)
        if r.returncode:
            print(r.stdout[-12000:], r.stderr[-3000:])
        T.check("schemathesis_no_5xx_and_responses_match_the_schema", r.returncode == 0, "schemathesis exited with %d" % r.returncode)
        alive = srv.proc.poll() is None and srv.get("/sdapi/v1/progress")[0] == 200
    finally:
        rc = srv.stop()
    T.check("schema_server_alive_and_exits_0", alive and rc == 0, "alive %s, exit status %s" % (alive, rc))
    T.finish(os.environ.get("TEST_LABEL", "server-schema"))


if __name__ == "__main__":
    main()
