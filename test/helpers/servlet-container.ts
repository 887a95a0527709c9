// A real Servlet container for the tests: Debian's Jetty 9.4 (package jetty9), embedded, with one
// echo servlet per mapping, so how `/admin;x/secret` is mapped is the container's own answer, not a
// guess. The servlet is compiled with javac into a temp dir by the test (nothing binary in git).
// `/faces/*` is mapped the way JSF applications map their FacesServlet (prefix mapping, beside
// `*.xhtml`): such a servlet renders the view its path info names, so `pathInfo` is the view.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, runServer } from './proxies.js';
import { freePort } from './services.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** What the echo servlet answers: which mapping took the request and what it received. */
export interface ServletEcho {
  servlet: 'admin' | 'internal' | 'logout' | 'faces' | 'default';
  /** For `faces`, the view a FacesServlet would render. */
  pathInfo: string | null;
  user: string | null;
  groups: string | null;
  requestURI: string;
  servletPath: string;
  method: string;
}

const JETTY_LIB = '/usr/share/jetty9/lib';
const JARS = ['jetty-server', 'jetty-http', 'jetty-io', 'jetty-util', 'jetty-servlet', 'jetty-security'];

// Every method reaches service(), so the same servlet answers WebDAV methods too.
const SOURCE = `
import java.io.IOException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class EchoServlets {
  public static class Echo extends HttpServlet {
    private final String name;
    public Echo(String name) { this.name = name; }
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse res) throws IOException {
      res.setStatus(200);
      res.setContentType("application/json");
      res.getWriter().write("{\\"servlet\\":" + q(name) + ",\\"user\\":" + q(req.getHeader("X-Forwarded-User"))
          + ",\\"groups\\":" + q(req.getHeader("X-Forwarded-Groups")) + ",\\"requestURI\\":" + q(req.getRequestURI())
          + ",\\"servletPath\\":" + q(req.getServletPath()) + ",\\"pathInfo\\":" + q(req.getPathInfo())
          + ",\\"method\\":" + q(req.getMethod()) + "}");
    }
  }

  static String q(String s) {
    if (s == null) return "null";
    StringBuilder b = new StringBuilder("\\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\\\') b.append('\\\\');
      if (c < 0x20) b.append(String.format("\\\\u%04x", (int) c)); else b.append(c);
    }
    return b.append('"').toString();
  }

  public static void main(String[] args) throws Exception {
    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(Integer.parseInt(args[0]));
    server.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.setContextPath("/");
    context.addServlet(new ServletHolder(new Echo("admin")), "/admin/*");
    context.addServlet(new ServletHolder(new Echo("internal")), "/internal/*");
    context.addServlet(new ServletHolder(new Echo("logout")), "/logout");
    context.addServlet(new ServletHolder(new Echo("faces")), "/faces/*");
    context.addServlet(new ServletHolder(new Echo("default")), "/*");
    server.setHandler(context);
    server.start();
    server.join();
  }
}
`;

function classPath(): string {
  const missing = 'Jetty 9 not found in /usr/share/jetty9/lib: install the Debian package jetty9';
  if (!existsSync(JETTY_LIB)) throw new Error(missing);
  const files = readdirSync(JETTY_LIB);
  const jars = JARS.map((name) => files.find((file) => file.startsWith(`${name}-9.`) && file.endsWith('.jar')));
  const servletApi = files.find((file) => /^servlet-api-.*\.jar$/.test(file));
  if (jars.some((jar) => jar === undefined) || servletApi === undefined) throw new Error(missing);
  return [...(jars as string[]), servletApi].map((jar) => join(JETTY_LIB, jar)).join(':');
}

/** Compiles the echo servlets and runs Jetty on a free loopback port until the test ends. */
export async function startServletContainer(t: Teardown): Promise<{ url: string }> {
  const javac = findBinary('javac', 'install the Debian package default-jdk-headless (javac)');
  const java = findBinary('java', 'install the Debian package default-jdk-headless (java)');
  const cp = classPath();
  const dir = mkdtempSync(join(tmpdir(), 'sgw-jetty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'EchoServlets.java'), SOURCE);
  const compiled = spawnSync(javac, ['-nowarn', '-cp', cp, '-d', dir, join(dir, 'EchoServlets.java')], { encoding: 'utf8' });
  if (compiled.status !== 0) throw new Error(`javac failed: ${compiled.stderr.slice(-800)}`);
  const port = await freePort();
  // Jetty logs to stderr; runServer keeps its tail for the error if it exits early.
  await runServer(t, java, ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', `${dir}:${cp}`, 'EchoServlets', String(port)], port);
  return { url: `http://127.0.0.1:${port}` };
}
