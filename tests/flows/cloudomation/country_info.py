# Asks which country to look up, calls a REST service inline with this.task and a stored
# connector, and keeps what it found: the style of Cloudomation's library flows, written for
# flowrt's compatibility test.
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    service = system.setting("country_service").get("value")
    country_request = this.task(
        "INPUT",
        request="Which country would you like to learn about?",
        reference="country",
    )
    country = country_request.get("output_value")["response"]
    this.log(country=country)

    lookup = this.task(
        "REST",
        url=f"{service['url']}/countries/{country}",
        method="GET",
        headers={"Authorization": f"token {service['token']}"},
        name="country lookup",
    )
    info = lookup.get("output_value")["json"]
    this.log(capital=info["capital"], population=info["population"])

    stored = this.connect("countries", path=f"/countries/{country}/neighbours", name="neighbours")
    neighbours = stored.load("output_value")["json"]

    this.set_output("country", country)
    this.set_output(capital=info["capital"], neighbours=neighbours)
    return this.success(f"{country}: capital {info['capital']}")
