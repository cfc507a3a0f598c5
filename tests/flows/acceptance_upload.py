import flow_api

def handler(system: flow_api.System, this: flow_api.Execution):
    data = this.connect('database', fetch='SELECT * FROM data').get('output_value')['result']
    this.save_dump('with-fetched-data')          # named savepoint
    this.connect('remote-api', method='post', path='/upload', json=data)
    return this.success('all done')
