// node-quickbooks 2.0.50 (an independent client, not written here) against the QuickBooks emulator:
// create, query, batch, change data capture, void, payment. Run by tests/emulator/test_node_quickbooks.py
// with the emulator's API base, a company and its access token; prints one JSON object of what
// each call answered, which the Python test asserts on. Any client error fails the run (exit 1).
'use strict'

const QuickBooks = require('node-quickbooks')
const { promisify } = require('util')

const [apiBase, realm, token] = process.argv.slice(2)
QuickBooks.V3_ENDPOINT_BASE_URL = `${apiBase}/company/` // the emulator stands in for the sandbox
const qbo = new QuickBooks('test-client', 'test-secret', token, false, realm, true, false, 75, '2.0', null)

const call = (name, ...args) => promisify(qbo[name].bind(qbo))(...args)

async function main () {
  const out = {}
  const customer = await call('createCustomer', { DisplayName: 'Node Client Pools' })
  out.customer = { Id: customer.Id, SyncToken: customer.SyncToken }
  const accounts = await call('findAccounts', { AccountType: 'Income' })
  const income = accounts.QueryResponse.Account[0]
  const item = await call('createItem', {
    Name: 'Node weekly service', Type: 'Service', UnitPrice: 85, IncomeAccountRef: { value: income.Id }
  })
  const line = (qty, price) => ({
    DetailType: 'SalesItemLineDetail',
    Amount: Math.round(qty * price * 100) / 100,
    SalesItemLineDetail: { ItemRef: { value: item.Id }, Qty: qty, UnitPrice: price }
  })
  const invoice = await call('createInvoice', { CustomerRef: { value: customer.Id }, Line: [line(2, 85), line(1.5, 40)] })
  out.invoice = { Id: invoice.Id, TotalAmt: invoice.TotalAmt, Balance: invoice.Balance, DocNumber: invoice.DocNumber }

  const found = await call('findInvoices', [{ field: 'CustomerRef', value: customer.Id, operator: '=' }])
  out.query = (found.QueryResponse.Invoice || []).map(i => i.Id)

  const batch = await call('batch', [
    { bId: 'nq1', operation: 'create', Invoice: { CustomerRef: { value: customer.Id }, Line: [line(1, 85)] } },
    { bId: 'nq2', operation: 'create', Invoice: { CustomerRef: { value: customer.Id }, Line: [line(1, 10)] } },
    { bId: 'nq3', operation: 'create', Invoice: { CustomerRef: { value: 'no-such-customer' }, Line: [line(1, 10)] } },
    { bId: 'nq4', Query: `select * from Invoice where CustomerRef = '${customer.Id}'` }
  ])
  out.batch = batch.BatchItemResponse.map(r => ({
    bId: r.bId,
    created: r.Invoice ? r.Invoice.Id : null,
    fault: r.Fault ? r.Fault.Error.map(e => e.code) : null,
    queried: r.QueryResponse ? (r.QueryResponse.Invoice || []).length : null
  }))

  const payment = await call('createPayment', {
    CustomerRef: { value: customer.Id },
    TotalAmt: 50,
    Line: [{ Amount: 50, LinkedTxn: [{ TxnId: invoice.Id, TxnType: 'Invoice' }] }]
  })
  out.payment = { Id: payment.Id, TotalAmt: payment.TotalAmt }
  const paid = await call('getInvoice', invoice.Id)
  out.after_payment = { Balance: paid.Balance }

  const second = out.batch[1].created
  const voidAnswer = await call('voidInvoice', second)
  const voided = voidAnswer.Invoice || voidAnswer
  out.voided = { Id: voided.Id, TotalAmt: voided.TotalAmt, Balance: voided.Balance, PrivateNote: voided.PrivateNote || null }

  const since = new Date(Date.now() - 60 * 60 * 1000)
  const cdc = await call('changeDataCapture', ['Invoice', 'Payment', 'Customer'], since)
  const changed = {}
  for (const response of cdc.CDCResponse[0].QueryResponse) {
    for (const [entity, rows] of Object.entries(response)) {
      if (Array.isArray(rows)) changed[entity] = rows.map(r => r.Id)
    }
  }
  out.cdc = changed
  process.stdout.write(JSON.stringify(out))
}

main().catch(err => {
  const detail = err && err.Fault ? JSON.stringify(err.Fault) : (err && err.stack) || String(err)
  process.stderr.write(`node-quickbooks failed: ${detail}\n`)
  process.exit(1)
})
