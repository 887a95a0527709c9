// Real Rails routing for the tests: Debian's ruby-actionpack (ActionDispatch, the router every
// Rails app uses) served by WEBrick. Routes are drawn as a Rails app's config/routes.rb draws them,
// so each takes the optional `(.:format)` suffix Rails adds: `/admin.json` is `admin#index`. In
// front of them Rack::MethodOverride, as in every Rails app's middleware: a POST's `_method` (form
// body, or X-HTTP-Method-Override) is the method the router sees.
// Everything lives in a temp dir and stops with the test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, runServer } from './proxies.js';
import { freePort } from './services.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** What the app answers: the controller#action the router chose and what it received. */
export interface RailsEcho {
  route: string;
  format: string | null;
  path: string;
  user: string | null;
  /** The method the router saw (after Rack::MethodOverride). */
  method: string;
}

const APP = `require 'json'
require 'action_dispatch'
require 'rack'
require 'webrick'

def answer(route)
  lambda do |env|
    params = env['action_dispatch.request.path_parameters'] || {}
    body = { route: route, format: params[:format], path: env['PATH_INFO'], user: env['HTTP_X_FORWARDED_USER'], method: env['REQUEST_METHOD'] }
    [200, { 'content-type' => 'application/json' }, [JSON.generate(body)]]
  end
end

routes = ActionDispatch::Routing::RouteSet.new
routes.draw do
  get 'admin', to: answer('admin#index')
  get 'admin/users', to: answer('admin/users#index')
  get 'internal/status', to: answer('internal#status')
  get 'logout', to: answer('sessions#destroy')
  get 'reports', to: answer('reports#index')
  post 'orders/:id', to: answer('orders#create')
  delete 'orders/:id', to: answer('orders#destroy')
  match 'orders/:id', to: answer('orders#update'), via: [:put, :patch]
  get '*rest', to: answer('pages#show'), format: false
end
app = Rack::Builder.new do
  use Rack::MethodOverride
  run routes
end
Rack::Handler::WEBrick.run(app, Host: '127.0.0.1', Port: Integer(ARGV[0]), AccessLog: [], Logger: WEBrick::Log.new(nil, 0))
`;

export async function startRailsApp(t: Teardown): Promise<{ url: string }> {
  const ruby = findBinary('ruby', "install Debian's ruby-actionpack and ruby-webrick (.ci/run does it)");
  const dir = mkdtempSync(join(tmpdir(), 'sgw-rails-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'app.rb'), APP);
  const port = await freePort();
  await runServer(t, ruby, [join(dir, 'app.rb'), String(port)], port);
  return { url: `http://127.0.0.1:${port}` };
}
