from services.funds.main import main

main()
