-- Headless Neovim 0.7 session against `funcforge serve`, run by tests/e2e/test_neovim.py.
--
-- Run as `nvim --headless --clean -n -c 'luafile nvim_driver.lua'` with FUNCFORGE_E2E set
-- to a JSON object: {file, root, server (argv), options (initializationOptions),
-- function, result (path), timeout_ms}. It opens the tool file, waits for the failing-calls
-- diagnostic, runs funcforge.optimize, takes the "Apply funcforge proposal" code action
-- (resolving it the way Neovim's own code_action does when the edit is left out), applies
-- its edit with Neovim's own apply_workspace_edit, runs the action's command, and writes
-- what it saw to the result file. The pytest side checks git and the file system.
-- Neovim 0.7 has no vim.lsp.start and no -l: start_client, buf_request_sync, luafile.

local raw = os.getenv('FUNCFORGE_E2E')
if not raw then
  io.stderr:write('nvim_driver.lua: FUNCFORGE_E2E is not set\n')
  vim.cmd('cquit! 2')
end
local spec = vim.fn.json_decode(raw)
local timeout = spec.timeout_ms
local out = { ok = false, step = 'start', messages = {}, progress = {}, statuses = {},
              seconds = {} }
local clock = vim.loop.hrtime()

local function write_result()
  local f = assert(io.open(spec.result, 'w'))
  f:write(vim.fn.json_encode(out))
  f:close()
end

-- Enter step `name`, noting how long the previous one took (seconds, for the report).
local function step(name)
  local now = vim.loop.hrtime()
  out.seconds[out.step] = (now - clock) / 1e9
  out.step, clock = name, now
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n') .. '\n'
end

local function messages_of(diags)
  return vim.tbl_map(function(d)
    return { message = d.message, severity = d.severity, lnum = d.lnum, col = d.col,
             end_col = d.end_col }
  end, diags)
end

local function wait_diagnostic(bufnr, needle, what)
  local found
  local ok = vim.wait(timeout, function()
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      if d.message:find(needle, 1, true) then
        found = d
        return true
      end
    end
    return false
  end, 20)
  assert(ok, 'timeout waiting for ' .. what .. '; diagnostics: '
    .. vim.inspect(messages_of(vim.diagnostic.get(bufnr))))
  return found
end

-- One request through Neovim's client; returns the result or raises with the error.
local function request(bufnr, client_id, method, params)
  local results, err = vim.lsp.buf_request_sync(bufnr, method, params, timeout)
  assert(results, method .. ' failed: ' .. tostring(err))
  local res = results[client_id]
  assert(res, method .. ': no answer from funcforge: ' .. vim.inspect(results))
  assert(not res.err, method .. ' error: ' .. vim.inspect(res.err))
  return res.result
end

local function find_def(bufnr)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    if line:match('^def ' .. spec['function'] .. '%(') then
      return i
    end
  end
  error('no def ' .. spec['function'] .. ' in ' .. spec.file)
end

local function read_file(path)
  local f = assert(io.open(path, 'r'))
  local text = f:read('*a')
  f:close()
  return text
end

local function run()
  step('open')
  vim.cmd('edit ' .. vim.fn.fnameescape(spec.file))
  local bufnr = vim.api.nvim_get_current_buf()

  -- Record what the server tells the user, its progress and its status notifications,
  -- then let Neovim's own handlers do their usual work.
  local default_progress = vim.lsp.handlers['$/progress']
  local attached = false
  local client_id = vim.lsp.start_client({
    name = 'funcforge',
    cmd = spec.server,
    root_dir = spec.root,
    init_options = spec.options,
    on_attach = function() attached = true end,
    handlers = {
      ['window/showMessage'] = function(_, result)
        table.insert(out.messages, { type = result.type, message = result.message })
      end,
      ['$/progress'] = function(err, result, ctx, config)
        table.insert(out.progress, result.value)
        return default_progress(err, result, ctx, config)
      end,
      ['funcforge/status'] = function(_, result)
        table.insert(out.statuses, result.state)
      end,
    },
  })
  assert(client_id, 'vim.lsp.start_client failed')
  vim.lsp.buf_attach_client(bufnr, client_id)
  assert(vim.wait(timeout, function() return attached end, 20), 'timeout waiting for attach')

  step('diagnostic')
  local failing = wait_diagnostic(bufnr, 'logged calls failed', 'the failing-calls diagnostic')
  out.diagnostic = { message = failing.message, severity = failing.severity,
                     lnum = failing.lnum, col = failing.col, end_col = failing.end_col }

  step('optimize')
  out.optimize = request(bufnr, client_id, 'workspace/executeCommand', {
    command = 'funcforge.optimize',
    arguments = { { ['function'] = spec['function'] } },
  })
  assert(out.optimize and out.optimize.proposals and #out.optimize.proposals > 0,
    'funcforge.optimize proposed nothing: ' .. vim.inspect(out.optimize))
  local ready = wait_diagnostic(bufnr, 'proposal', 'the proposal-ready diagnostic')
  out.proposal_diagnostic = { message = ready.message, severity = ready.severity }

  step('type a line')
  -- The user types a line above the function and does not save (autosave off).
  local def_line = find_def(bufnr)
  vim.api.nvim_buf_set_lines(bufnr, def_line - 1, def_line - 1, false, { '# typed above' })
  def_line = def_line + 1
  vim.wait(400)  -- Neovim debounces didChange

  step('code action')
  vim.api.nvim_win_set_cursor(0, { def_line, 4 })
  local params = vim.lsp.util.make_range_params(0, 'utf-16')
  params.context = { diagnostics = vim.lsp.diagnostic.get_line_diagnostics(bufnr) }
  out.action_context_diagnostics = #params.context.diagnostics
  local actions = request(bufnr, client_id, 'textDocument/codeAction', params) or {}
  out.action_titles = vim.tbl_map(function(a) return a.title end, actions)
  local action
  for _, a in ipairs(actions) do
    if vim.startswith(a.title, 'Apply funcforge proposal') then
      action = a
      break
    end
  end
  assert(action, 'no "Apply funcforge proposal" action: ' .. vim.inspect(out.action_titles))
  out.action = { title = action.title, kind = action.kind }

  -- Neovim 0.7 advertises resolveSupport for `edit`: its code_action resolves when the
  -- edit is missing, and so do we.
  out.resolved = false
  if not action.edit then
    step('resolve')
    action = request(bufnr, client_id, 'codeAction/resolve', action)
    out.resolved = true
  end
  assert(action.edit, 'the action has no edit even after codeAction/resolve')
  local before = buffer_text(bufnr)

  step('apply edit')
  vim.lsp.util.apply_workspace_edit(action.edit, 'utf-16')
  out.buffer_text = buffer_text(bufnr)
  vim.wait(400)  -- let the didChange of the edit go out before the command
  assert(out.buffer_text ~= before, 'apply_workspace_edit left the buffer unchanged')

  step('apply command')
  assert(action.command, 'the action has no command')
  out.command = action.command.command
  out.apply = request(bufnr, client_id, 'workspace/executeCommand', {
    command = action.command.command,
    arguments = action.command.arguments,
  })

  -- The buffer holds the change and the typed line, unsaved; the file on disk was not
  -- touched under it, so there is nothing to reconcile (no W12 on checktime).
  step('after apply')
  out.after = { modified = vim.bo[bufnr].modified, disk_text = read_file(spec.file) }
  vim.cmd('checktime')
  out.after.modified_after_checktime = vim.bo[bufnr].modified
  -- Positions follow the editor's text: the failures, now history, sit on the name.
  local history = wait_diagnostic(bufnr, 'before your change', 'the history diagnostic')
  out.history = { message = history.message, severity = history.severity,
                  lnum = history.lnum, def_lnum = find_def(bufnr) - 1 }
  local hover = request(bufnr, client_id, 'textDocument/hover', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = find_def(bufnr) - 1, character = 6 },
  })
  out.hover = hover and hover.contents and hover.contents.value or vim.NIL
  step('save')
  vim.cmd('write')
  out.saved_text = read_file(spec.file)

  step('shutdown')
  vim.lsp.stop_client(client_id)
  assert(vim.wait(timeout, function() return vim.lsp.get_client_by_id(client_id) == nil end, 20),
    'timeout waiting for the server to stop')
  step('done')
end

local ok, err = xpcall(run, debug.traceback)
out.ok = ok
if not ok then out.error = tostring(err) end
write_result()
if ok then vim.cmd('qall!') else vim.cmd('cquit! 1') end
